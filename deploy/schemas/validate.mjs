// Validates Strimzi custom resources against the schemas of Strimzi's own CRDs, as compiled into
// @kubernetes-models/strimzi-kafka-operator (pinned in package-lock.json), for deploy/validate.py.
//
//   node validate.mjs < resources.json     (a JSON array)  ->  a JSON array of "where: problem"
//
// Strict, as `kubectl apply --validate=strict` is: a field the schema does not declare is an error
// (the API server would prune it silently and the operator would never see it). The package ships
// compiled validators, not the schemas, so the declared fields are learnt by watching them at work:
// a compiled validator reads every property its schema declares (`data.name !== undefined`) and
// only those, and enumerates an object's keys only where the schema accepts any key
// (additionalProperties, patternProperties). So each object is handed over behind a Proxy that
// records the keys read; an object whose keys were read but that holds others has unknown fields;
// an object whose keys were enumerated, or none read at all (a free-form `config`), has none.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

const require = createRequire(import.meta.url);
const PACKAGE = dirname(require.resolve("@kubernetes-models/strimzi-kafka-operator/package.json"));

function watched(value, seen) {
  if (value === null || typeof value !== "object") return value;
  const record = { read: new Set(), enumerated: false };
  seen.set(value, record);
  const children = new Map();
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key === "string") record.read.add(key);
      const child = Reflect.get(target, key, receiver);
      if (child === null || typeof child !== "object") return child;
      if (!children.has(key)) children.set(key, watched(child, seen));
      return children.get(key);
    },
    has(target, key) {
      if (typeof key === "string") record.read.add(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      record.enumerated = true;
      return Reflect.ownKeys(target);
    },
  });
}

function unknownFields(value, seen, path, found) {
  if (value === null || typeof value !== "object") return found;
  const record = seen.get(value);
  const keys = Array.isArray(value) ? [] : Object.keys(value);
  if (record && !record.enumerated && record.read.size > 0) {
    for (const key of keys) if (!record.read.has(key)) found.push(`${path}/${key}: unknown field`);
  }
  const items = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  for (const [key, child] of items) unknownFields(child, seen, `${path}/${key}`, found);
  return found;
}

async function validatorFor(apiVersion, kind) {
  const [group, version] = apiVersion.split("/");
  const name = group.split(".").map((p) => p[0].toUpperCase() + p.slice(1)).join("");
  const file = join(PACKAGE, "_schemas", `${name}${version[0].toUpperCase()}${version.slice(1)}${kind}.js`);
  try {
    return (await import(pathToFileURL(file).href)).validate;
  } catch {
    return null;
  }
}

const problems = [];
for (const resource of JSON.parse(readFileSync(0, "utf8"))) {
  const where = `${resource.kind}/${resource.metadata?.name}`;
  const validate = await validatorFor(String(resource.apiVersion), String(resource.kind));
  if (validate === null) {
    problems.push(`${where}: no schema for ${resource.apiVersion} ${resource.kind}`);
    continue;
  }
  const seen = new WeakMap();
  if (!validate(watched(resource, seen))) {
    for (const e of validate.errors) {
      const message = e.message ?? `${e.keyword} ${JSON.stringify(e.params)}`;
      problems.push(`${where}: ${e.instancePath || "/"} ${message}`);
    }
  }
  for (const unknown of unknownFields(resource, seen, "", [])) problems.push(`${where}: ${unknown}`);
}
process.stdout.write(JSON.stringify(problems));
