// Calls the gateway's OpenAI doors with the official openai SDK and prints one
// JSON line. Usage: node openai.mjs <baseURL> <apiKey> <mode> <model> [prompt]
//   chat, chat-stream: a chat completion (the stream asks for its usage);
//   chat-tools: a function call and its result sent back, stream or not
//     (prompt "stream" streams both turns);
//   chat-image: a user message with a data: URL image;
//   chat-n: asks for two choices (refused);
//   responses, responses-stream: a response, plain or streamed;
//   responses-tools: a function call and its output sent back, streamed;
//   models: models.list() and models.retrieve(<model>).
import OpenAI from 'openai';

const [baseURL, apiKey, mode, model, prompt = 'Hello'] = process.argv.slice(2);
const modes = ['chat', 'chat-stream', 'chat-tools', 'chat-image', 'chat-n', 'responses',
  'responses-stream', 'responses-tools', 'models'];
if (!baseURL || !apiKey || !modes.includes(mode) || !model) {
  console.error(`usage: node openai.mjs <baseURL> <apiKey> <${modes.join('|')}> <model> [prompt]`);
  process.exit(2);
}

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
// a 1x1 PNG
const pixel = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

async function chat(params) {
  const completion = await client.chat.completions.create({ model, ...params });
  const choice = completion.choices[0];
  return {
    id: completion.id,
    object: completion.object,
    model: completion.model,
    text: choice.message.content,
    tool_calls: choice.message.tool_calls ?? null,
    finish_reason: choice.finish_reason,
    usage: completion.usage,
  };
}

// The chunks of a stream folded as a client folds them.
async function chatStream(params) {
  const stream = await client.chat.completions.create({
    model, stream: true, stream_options: { include_usage: true }, ...params,
  });
  let text = '';
  let role = null;
  let finish = null;
  let usage = null;
  let chunks = 0;
  let modelSeen = null;
  const calls = [];
  for await (const chunk of stream) {
    chunks += 1;
    modelSeen = chunk.model;
    if (chunk.usage) {
      usage = chunk.usage;
    }
    for (const choice of chunk.choices) {
      role = role ?? choice.delta.role ?? null;
      text += choice.delta.content ?? '';
      for (const call of choice.delta.tool_calls ?? []) {
        calls[call.index] = calls[call.index] ?? { id: null, name: '', arguments: '' };
        calls[call.index].id = call.id ?? calls[call.index].id;
        calls[call.index].name += call.function?.name ?? '';
        calls[call.index].arguments += call.function?.arguments ?? '';
      }
      finish = choice.finish_reason ?? finish;
    }
  }
  return {
    model: modelSeen, role, text, finish_reason: finish, usage, chunks,
    tool_calls: calls.length ? calls.map((c) => ({ id: c.id, type: 'function',
      function: { name: c.name, arguments: c.arguments } })) : null,
  };
}

async function chatTools() {
  const streamed = prompt === 'stream';
  const ask = streamed ? chatStream : chat;
  const messages = [{ role: 'user',
    content: 'mock:{"text":"Let me look.","tool_use":{"name":"get_weather","input":{"city":"Paris"}}}' }];
  const first = await ask({ messages, tools: [weather], tool_choice: 'auto' });
  const call = first.tool_calls[0];
  messages.push({ role: 'assistant', content: first.text, tool_calls: first.tool_calls });
  messages.push({ role: 'tool', tool_call_id: call.id, content: '{"celsius": 21}' });
  const second = await ask({ messages, tools: [weather] });
  return { first, second };
}

async function responses(params) {
  const response = await client.responses.create({ model, store: false, ...params });
  return {
    id: response.id,
    object: response.object,
    status: response.status,
    model: response.model,
    text: response.output_text,
    output: response.output.map((item) => ({ type: item.type, name: item.name ?? null,
      call_id: item.call_id ?? null, arguments: item.arguments ?? null })),
    usage: response.usage,
  };
}

async function responsesStream(params) {
  const stream = client.responses.stream({ model, store: false, ...params });
  const types = [];
  let text = '';
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'response.output_text.delta') {
      text += event.delta;
    }
  }
  const response = await stream.finalResponse();
  return {
    types, text, status: response.status, model: response.model, output_text: response.output_text,
    output: response.output.map((item) => ({ type: item.type, name: item.name ?? null,
      call_id: item.call_id ?? null, arguments: item.arguments ?? null })),
    usage: response.usage,
  };
}

async function responsesTools() {
  const tools = [{ type: 'function', name: 'get_weather', description: 'The weather in a city',
    parameters: weather.function.parameters, strict: false }];
  const input = [{ role: 'user',
    content: 'mock:{"text":"Looking.","tool_use":{"name":"get_weather","input":{"city":"Oslo"}}}' }];
  const first = await responsesStream({ input, tools });
  const call = first.output.find((item) => item.type === 'function_call');
  input.push({ type: 'function_call', call_id: call.call_id, name: call.name,
    arguments: call.arguments });
  input.push({ type: 'function_call_output', call_id: call.call_id, output: '{"celsius": 4}' });
  const second = await responsesStream({ input, tools });
  return { first, second };
}

async function models() {
  const ids = [];
  for await (const m of client.models.list()) {
    ids.push({ id: m.id, object: m.object, owned_by: m.owned_by, created: m.created });
  }
  const one = await client.models.retrieve(model);
  return { ids, retrieved: one };
}

const run = {
  chat: () => chat({ messages: [{ role: 'system', content: 'Be brief.' },
    { role: 'user', content: prompt }], max_completion_tokens: 64 }),
  'chat-stream': () => chatStream({ messages: [{ role: 'user', content: prompt }] }),
  'chat-tools': chatTools,
  'chat-image': () => chat({ messages: [{ role: 'user', content: [
    { type: 'text', text: prompt }, { type: 'image_url', image_url: { url: pixel } }] }] }),
  'chat-n': () => chat({ n: 2, messages: [{ role: 'user', content: prompt }] }),
  responses: () => responses({ instructions: 'Be brief.', input: prompt, max_output_tokens: 64 }),
  'responses-stream': () => responsesStream({ input: prompt }),
  'responses-tools': responsesTools,
  models,
};

try {
  console.log(JSON.stringify({ ok: true, ...(await run[mode]()) }));
} catch (err) {
  console.log(JSON.stringify({
    ok: false,
    status: err.status ?? null,
    errorClass: err.constructor.name,
    errorType: err.type ?? err.error?.type ?? null,
    errorCode: err.code ?? null,
    errorParam: err.param ?? null,
    message: String(err.message),
  }));
  process.exitCode = 1;
}
