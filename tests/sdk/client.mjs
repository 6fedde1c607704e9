// Calls the gateway with the official Anthropic SDK and prints one JSON line.
// Usage: node client.mjs <baseURL> <apiKey> <mode> <model> [prompt]
//   stream, plain: a message; count: messages.countTokens;
//   models: models.list (two per page, every page) and models.retrieve(<model>)
import Anthropic from '@anthropic-ai/sdk';

const [baseURL, apiKey, mode, model, prompt = 'Hello'] = process.argv.slice(2);
if (!baseURL || !apiKey || !['stream', 'plain', 'count', 'models'].includes(mode) || !model) {
  console.error('usage: node client.mjs <baseURL> <apiKey> <stream|plain|count|models> <model> [prompt]');
  process.exit(2);
}

const client = new Anthropic({ baseURL, apiKey, maxRetries: 0 });
const messages = [{ role: 'user', content: prompt }];
const params = { model, max_tokens: 64, messages };

async function sendMessage() {
  const message = mode === 'stream'
    ? await client.messages.stream(params).finalMessage()
    : await client.messages.create(params);
  const text = message.content
    .filter((block) => block.type === 'text')
    .map((block) => block.text)
    .join('');
  return {
    ok: true,
    id: message.id,
    model: message.model,
    text,
    stop_reason: message.stop_reason,
    usage: message.usage,
  };
}

async function countOrList() {
  if (mode === 'count') {
    const counted = await client.messages.countTokens({ model, messages });
    return { ok: true, input_tokens: counted.input_tokens };
  }
  const ids = [];
  for await (const m of client.models.list({ limit: 2 })) {
    ids.push(m.id);
  }
  const one = await client.models.retrieve(model);
  return { ok: true, ids, retrieved: one };
}

try {
  const ask = mode === 'count' || mode === 'models' ? countOrList : sendMessage;
  console.log(JSON.stringify(await ask()));
} catch (err) {
  console.log(JSON.stringify({
    ok: false,
    status: err.status ?? null,
    errorClass: err.constructor.name,
    errorType: err.error?.error?.type ?? null,
    message: String(err.message),
  }));
  process.exitCode = 1;
}
