// Validates captured MQTT traffic against the published contract (docs/asyncapi.yaml) with
// tools others wrote: the document is parsed and checked by @asyncapi/parser (any error
// diagnostic fails), each message's payload schema is taken from the parsed document and
// compiled by ajv (JSON Schema draft-07, formats checked), and every captured message is
// validated against the schema its topic names.
//
//   node scripts/contract/validate.mjs docs/asyncapi.yaml CAPTURE... [--require s1,s2,...]
//
// Each CAPTURE holds `mosquitto_sub -v` lines: "<topic> <json payload>". --require lists
// uplink streams (or SchoolAlarmState, the school path's message) that must appear at
// least once over all captures. Exit 0 when every
// message is valid.
import { readFileSync } from 'node:fs';
import { Parser, fromFile } from '@asyncapi/parser';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

const args = process.argv.slice(2);
const at = args.indexOf('--require');
const required = at >= 0 && args[at + 1] ? args[at + 1].split(',') : [];
const [docPath, ...capturePaths] = at >= 0 ? args.slice(0, at) : args;
if (!docPath || capturePaths.length === 0) {
  console.error('usage: validate.mjs ASYNCAPI.yaml CAPTURE... [--require s1,s2]');
  process.exit(2);
}

const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, docPath).parse();
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length) {
  for (const d of errors) console.error(`contract: ${docPath}: ${d.message} at ${d.path.join('.')}`);
  process.exit(1);
}

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
const validators = {};
for (const m of document.components().messages()) {
  validators[m.id()] = ajv.compile(m.payload().json());
}
for (const name of ['Uplink', 'Status', 'Downlink', 'SchoolAlarmState']) {
  if (!validators[name]) {
    console.error(`contract: ${docPath} has no message ${name}`);
    process.exit(1);
  }
}

// Downlinks the board refused (its ack says ok: false) are not the contract: skip them.
const refused = new Set();
const lines = capturePaths.flatMap((p) => readFileSync(p, 'utf8').split('\n'));
for (const line of lines) {
  if (!/\/up\/ack /.test(line)) continue;
  try {
    const ack = JSON.parse(line.slice(line.indexOf(' ') + 1)).body;
    if (ack && ack.ok === false && ack.downlink_id) refused.add(ack.downlink_id);
  } catch {
    // reported below
  }
}
let skipped = 0;
const byStream = {};
const failures = [];
let count = 0;
for (const line of lines) {
  if (!line.trim()) continue;
  const space = line.indexOf(' ');
  const topic = line.slice(0, space);
  let payload;
  try {
    payload = JSON.parse(line.slice(space + 1));
  } catch (e) {
    failures.push(`${topic}: not JSON: ${e.message}`);
    continue;
  }
  let kind;
  if (/\/up\/[a-z_]+$/.test(topic)) kind = 'Uplink';
  else if (topic.endsWith('/status')) kind = 'Status';
  else if (/\/down\/[a-z_]+$/.test(topic)) kind = 'Downlink';
  else if (topic.endsWith('/school/alarm')) kind = 'SchoolAlarmState';
  else continue;
  if (kind === 'Downlink' && refused.has(payload.id)) {
    skipped += 1;
    continue;
  }
  count += 1;
  const label = kind === 'Uplink' ? topic.split('/').pop() : kind;
  byStream[label] = (byStream[label] || 0) + 1;
  if (kind === 'Uplink' && payload.stream !== topic.split('/').pop()) {
    failures.push(`${topic}: envelope stream ${payload.stream} does not match the topic`);
  }
  const v = validators[kind];
  if (!v(payload)) {
    const why = v.errors.slice(0, 4).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    failures.push(`${topic} seq ${payload.seq ?? '-'}: ${why}`);
  }
}
const missing = required.filter((s) => !byStream[s]);
console.log(`contract: ${count} messages from ${capturePaths.length} captures checked against ${docPath} (${skipped} downlinks the board refused not checked): ${JSON.stringify(byStream)}`);
if (missing.length) console.error(`contract: no message of ${missing.join(', ')} was captured`);
for (const f of failures.slice(0, 20)) console.error(`contract: INVALID ${f}`);
if (failures.length > 20) console.error(`contract: … and ${failures.length - 20} more`);
process.exit(failures.length || missing.length || count === 0 ? 1 : 0);
