"""Baselines made of the libraries alone: intake's floor, and the end-to-end pipeline's.

    python bare_pipeline.py front --bootstrap B --topic T --port P
    python bare_pipeline.py hop --bootstrap B --source S --sink K --group G

`front` is what intake cannot do with less: a FastAPI app on the same server (uvicorn, uvloop,
httptools) that validates the body as a `QuestionnaireV1`, sends it to Kafka under a new
reference and answers 202 `{"reference": …}` once the broker has acknowledged it; no
middleware, store, status consumer, envelope or log line. `hop` forwards each record of one
topic to the next as B2 does: `getmany`, `send` without awaiting each, gather, commit per batch.
Both produce as the services do (acks=all, idempotent). Chained front → hop → hop, each in its
own process like intake, router and notifier, they are the shortest path POST → referral can
take on the same broker and machine: no store, no routing, no e-mail. `make bench` runs the
front on intake's ladder, and the three together at the end-to-end phase's rate.
"""

import argparse
import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from bench.baselines import forward_batch
from rebond_contracts.questionnaire import QuestionnaireV1

READY = "ready"  # what a hop prints once it has its partitions (the front answers /readyz)


def front_app(bootstrap: str, topic: str) -> FastAPI:
    producers: list[AIOKafkaProducer] = []  # made at startup: aiokafka wants the running loop

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        producers.append(producer)
        try:
            yield
        finally:
            await producer.stop()

    app = FastAPI(lifespan=lifespan)

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/submissions", status_code=202)
    async def submit(questionnaire: QuestionnaireV1) -> JSONResponse:
        reference = uuid.uuid4().hex
        value = questionnaire.model_dump_json().encode()
        await producers[0].send_and_wait(topic, value, key=reference.encode())
        return JSONResponse({"reference": reference}, status_code=202)

    return app


async def hop(bootstrap: str, source: str, sink: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        print(READY, flush=True)
        while True:
            await forward_batch(consumer, producer, sink, timeout_ms=100, max_records=500)
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=("front", "hop"))
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic")
    parser.add_argument("--port", type=int)
    parser.add_argument("--source")
    parser.add_argument("--sink")
    parser.add_argument("--group")
    args = parser.parse_args()
    if args.role == "front":
        uvicorn.run(
            front_app(args.bootstrap, args.topic), host="127.0.0.1", port=args.port,
            log_config=None, access_log=False, loop="uvloop", http="httptools",
        )  # fmt: skip
    else:
        asyncio.run(hop(args.bootstrap, args.source, args.sink, args.group))


if __name__ == "__main__":
    main()
