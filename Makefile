# Rebond: `make run` runs the system, `make test` passes the tests. Both set up what they need.
SHELL := /bin/bash
export UV_PYTHON_PREFERENCE := only-system
export UV_PYTHON_DOWNLOADS := never
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
#: Python keeps the bytecode it compiles, under .run/pycache (not beside the sources), even where
#: PYTHONDONTWRITEBYTECODE is set (this machine sets it): otherwise every process the tests
#: start, each xdist worker and service process, compiles every module it imports again, and
#: pytest rewrites every test module again (measured: make check's tests 214 -> 164 s of CPU; a
#: router and a notifier import in 0.9 s instead of 2.2).
unexport PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX := $(CURDIR)/.run/pycache

.PHONY: sync setup setup-test run check test test-faults test-cluster bench bench-loadgen bench-sweep soak validate-deploy deploy-generate test-e2e lint schemas kafka-start kafka-stop kafka-status clean

#: What `make check` runs of the tests: those that need neither a broker nor a service process.
#: Each test's tiers are set from the fixtures it uses (rebond_testing.plugin); nobody marks them.
CHECK_TESTS := not kafka and not services and not faults
#: They run on every core (pytest-xdist), a module's tests on one worker, in order (its fixtures
#: set up once, schemathesis' checks of what its runs reached after them).
CHECK_WORKERS ?= auto
#: Their temporary files (pytest's tmp_path, the SQLite stores, the session's PostgreSQL cluster)
#: go to memory, /dev/shm, when it has 4 GiB free (each worker's cluster grows to about 700 MB
#: of databases): measured on 2 cores, the tests took 109 s instead of 117 to 126 s, and
#: removing a worker's cluster at its end 0.3 s instead of 2.4 to 3.5 s (38,000 files on disk).
CHECK_TMPDIR := $(shell [ -w /dev/shm ] && [ "$$(df --output=avail -k /dev/shm 2>/dev/null | tail -1)" -ge 4194304 ] 2>/dev/null && echo /dev/shm)
CHECK_PYTEST := env $(if $(CHECK_TMPDIR),TMPDIR=$(CHECK_TMPDIR)) $(UV) run pytest -q -m "$(CHECK_TESTS)" -n $(CHECK_WORKERS) --dist loadfile
#: What needs a broker or service processes, on two pytest-xdist workers (measured on 2 cores:
#: 534 s against 835 s in one process; three workers left services unready after 60 s). Each
#: worker is its own pytest session, with its own broker and PostgreSQL cluster (the session
#: fixtures), so no two workers share a topic's history; the fault suite's modules, the
#: longest, are handed out first (rebond_testing.plugin orders them so).
BROKER_TESTS := kafka or services or faults
BROKER_WORKERS ?= 2
BROKER_PYTEST := $(UV) run pytest -q -m "$(BROKER_TESTS)" -n $(BROKER_WORKERS) --dist loadfile

sync:  ## install uv (from PyPI) if missing, and the Python packages
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --all-packages --locked

setup: sync  ## plus the Kafka jars
	$(UV) run python deploy/kafka/kafkactl.py fetch

run: setup  ## Kafka and the four services; Ctrl-C stops them
	$(UV) run python deploy/run.py

setup-test: setup  ## plus PostgreSQL and Chromium from Debian's packages, when missing
	bash deploy/local/ensure-test-packages.sh

#: The inner loop draws a quarter of the API fuzzing's examples (rebond_testing.fuzzing);
#: `make test`, which CI runs, draws them all. Lint and types run beside the tests (the tests
#: leave about 40 % of the two cores idle, waiting on Chromium, child interpreters and timers;
#: mypy takes 18 s of CPU without its cache); their output is shown once they end, and either
#: failing fails the target.
check: sync  ## the inner loop: lint, types, and the tests needing no broker nor service
	@mkdir -p .run; status=0; \
	$(MAKE) --no-print-directory lint > .run/lint.log 2>&1 & lint=$$!; \
	REBOND_FUZZ=quick $(CHECK_PYTEST) || status=$$?; \
	wait $$lint || { status=$$?; echo "--- lint or types failed (.run/lint.log):"; }; \
	cat .run/lint.log; \
	exit $$status

#: `make test` runs both at once: the broker tiers mostly wait (on brokers, service processes,
#: the fault suite's outages and loads: 0.7 of a core on average here), so `make check`'s tests
#: run beside them at a lower priority (nice), on what the broker tiers leave; their output is
#: kept in .run/check-tests.log and shown when both have ended. Fails if either fails.
test: setup-test  ## the whole suite, on a real broker (KAFKA_BOOTSTRAP_SERVERS, Docker, or a local one)
	@mkdir -p .run; status=0; \
	nice -n 19 $(CHECK_PYTEST) > .run/check-tests.log 2>&1 & check=$$!; \
	$(BROKER_PYTEST) || status=$$?; \
	wait $$check || status=$$?; \
	echo "--- make check's tests, run beside the broker tiers (.run/check-tests.log):"; \
	cat .run/check-tests.log; \
	exit $$status

test-e2e: setup-test
	$(UV) run pytest tests

test-faults: setup-test  ## the fault suite only (also part of `make test`)
	$(UV) run pytest tests/faults tests/scaling -m faults

test-cluster: setup-test  ## durability on a three-node Kafka cluster (issue 25; 9-15 min here, not in `make test`)
	REBOND_CLUSTER_TESTS=1 $(UV) run pytest tests/cluster -v

bench: setup  ## benchmarks with same-run baselines -> bench/results/{latest.json,report.md,latency.png}; BENCH_ARGS="--quick" or "--only idle" (README)
	$(UV) run python bench/run.py $(BENCH_ARGS)

bench-loadgen: setup  ## the Go and the Python load generators on the same target -> bench/results/loadgen_compare.json
	$(UV) run python bench/loadgen_compare.py

bench-sweep: sync  ## the router's idle deadline sweep at 1,000 to 100,000 open referrals, before and after its indexes -> bench/results/sweep.json
	$(UV) run python bench/sweep.py

soak: setup  ## 10 minutes at 100 submissions/s -> memory growth per service, errors
	$(UV) run python bench/soak.py

validate-deploy:  ## render the kustomize overlays, validate them (CRDs included) and the compose file, offline
	$(UV) run python deploy/validate.py

deploy-generate:  ## write the Strimzi KafkaTopics and KafkaUsers from the topic registry
	$(UV) run python deploy/validate.py --generate

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy libs/*/src contracts/src services/*/src deploy bench

schemas:  ## regenerate the JSON Schema snapshots after a contract change
	$(UV) run rebond-schemas --write

kafka-start:
	$(UV) run python deploy/kafka/kafkactl.py start
kafka-stop:
	$(UV) run python deploy/kafka/kafkactl.py stop
kafka-status:
	$(UV) run python deploy/kafka/kafkactl.py status

clean:
	rm -rf .run
