// Calls the gateway with the official Anthropic SDK and prints one JSON line.
// Usage: node client.mjs <baseURL> <apiKey> <stream|plain> <model> [prompt]
import Anthropic from '@anthropic-ai/sdk';

const [baseURL, apiKey, mode, model, prompt = 'Hello'] = process.argv.slice(2);
if (!baseURL || !apiKey || !['stream', 'plain'].includes(mode) || !model) {
  console.error('usage: node client.mjs <baseURL> <apiKey> <stream|plain> <model> [prompt]');
  process.exit(2);
}

const client = new Anthropic({ baseURL, apiKey, maxRetries: 0 });
const params = { model, max_tokens: 64, messages: [{ role: 'user', content: prompt }] };

try {
  const message = mode === 'stream'
    ? await client.messages.stream(params).finalMessage()
    : await client.messages.create(params);
  const text = message.content
    .filter((block) => block.type === 'text')
    .map((block) => block.text)
    .join('');
  console.log(JSON.stringify({
    ok: true,
    id: message.id,
    model: message.model,
    text,
    stop_reason: message.stop_reason,
    usage: message.usage,
  }));
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
