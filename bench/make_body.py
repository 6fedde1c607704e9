#!/usr/bin/python3
"""Writes the benchmark request and the fixed upstream answers into OUTDIR.

The request imitates the shape and size of a first-turn request from a
command-line coding client: a large system prompt, two dozen tools with JSON
schemas, a metadata.user_id that is itself a JSON string, and the client's
usual headers. All text is generated here from a seeded word list, so runs are
reproducible and byte-identical.

Files written:
  body-nonstream.json, body-stream.json   request bodies ("stream" false/true)
  body-large.json                          the same request later in a long
                                           session: 1 MB of conversation
                                           (non-stream)
  headers-nonstream.txt, headers-stream.txt  one "name: value" per line
  body-openai_nonstream.json,              the same request as an OpenAI
  body-openai_stream.json                  chat completion, and its headers
  headers-openai_*.txt                     (a stream asks for text/event-stream)
  answer-message.json                      fixed non-stream answer
  answer-sse.txt                           fixed 40-event SSE answer
  answer-bedrock.eventstream               the same 40 events as Bedrock streams
                                           them: AWS event-stream messages
  body-bedrock_*stream.json,               the stream request again, for the
  headers-bedrock_*stream.txt              keys of the Bedrock accounts
"""
import base64
import copy
import json
import os
import random
import struct
import sys
import uuid
import zlib

MODEL = "claude-sonnet-4-5-20250929"
TARGET_BYTES = 77 * 1000
LARGE_BYTES = 1000 * 1000
SEED = 2024

WORDS = (
    "the a an file files path directory command output input user project "
    "when use this tool to read write edit search run check return result "
    "must should never always only if not before after each line lines text "
    "pattern match matches code function test tests build error errors value "
    "values option options list current working absolute relative contents "
    "change changes existing new create update remove task tasks step steps "
    "answer question short clear specific context session shell process time "
    "limit default number string boolean array object field fields name names"
).split()

TOOL_NAMES = [
    "Agent", "Shell", "ShellOutput", "ShellStop", "FindFiles", "SearchText",
    "ReadFile", "WriteFile", "EditFile", "MultiEdit", "NotebookRead",
    "NotebookEdit", "FetchPage", "WebQuery", "PlanExit", "TodoList",
    "AskUser", "RunSkill", "SlashCommand", "ListDir", "DiffView",
    "LspSymbols", "LspDiagnostics", "MemoryNote",
]


def prose(rng, n_words):
    """Sentences of seeded filler words, capitalised and punctuated."""
    out, sentence = [], []
    for _ in range(n_words):
        sentence.append(rng.choice(WORDS))
        if len(sentence) >= rng.randint(8, 18):
            out.append(" ".join(sentence).capitalize() + ".")
            sentence = []
    if sentence:
        out.append(" ".join(sentence).capitalize() + ".")
    return " ".join(out)


def bullets(rng, count, words_each):
    return "\n".join("- " + prose(rng, words_each) for _ in range(count))


def tool(rng, name):
    props = {}
    required = []
    for i in range(rng.randint(2, 6)):
        pname = "%s_%d" % (rng.choice(WORDS), i)
        kind = rng.choice(["string", "string", "integer", "boolean", "array"])
        prop = {"type": kind, "description": prose(rng, rng.randint(10, 30))}
        if kind == "array":
            prop["items"] = {"type": "string"}
        if kind == "string" and rng.random() < 0.3:
            prop["enum"] = sorted({rng.choice(WORDS) for _ in range(4)})
        props[pname] = prop
        if i < 2:
            required.append(pname)
    description = prose(rng, rng.randint(130, 260)) + "\n\nUsage notes:\n" + \
        bullets(rng, rng.randint(3, 6), 18)
    return {
        "name": name,
        "description": description,
        "input_schema": {
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
    }


def build_body(rng):
    device_id = "%064x" % rng.getrandbits(256)
    account_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    user_id = json.dumps({"device_id": device_id,
                          "account_uuid": account_uuid,
                          "session_id": session_id},
                         separators=(",", ":"))
    system = [
        {"type": "text",
         "text": "You are an interactive command-line assistant for software work."},
        {"type": "text",
         "text": "Answer briefly. Prefer editing existing files to creating new ones."},
        {"type": "text",
         "text": "",
         "cache_control": {"type": "ephemeral"}},
    ]
    body = {
        "model": MODEL,
        "messages": [{
            "role": "user",
            "content": [{"type": "text", "text": "Reply with one word: hello."}],
        }],
        "system": system,
        "tools": [tool(rng, n) for n in TOOL_NAMES],
        "metadata": {"user_id": user_id},
        "max_tokens": 32000,
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "context_management": {"edits": [{"type": "clear_thinking_20251015",
                                          "keep": "all"}]},
        "output_config": {"effort": "high"},
        "stream": True,
    }
    # Fill the cached system block up to the target size.
    base = len(json.dumps(body, separators=(",", ":")))
    assert base < TARGET_BYTES, "tools alone exceed the target size"
    filler = ""
    while len(filler) < TARGET_BYTES - base:
        filler += "# " + prose(rng, 6) + "\n" + bullets(rng, 6, 20) + "\n\n"
    # Escaped newlines take two bytes each, so trim until it fits.
    keep = TARGET_BYTES - base
    while True:
        system[2]["text"] = filler[:keep]
        excess = len(json.dumps(body, separators=(",", ":"))) - TARGET_BYTES
        if excess <= 0:
            return body, session_id
        keep -= excess


def file_text(rng, n_lines):
    """A file as the read tool shows it: numbered lines of code-like text."""
    lines = []
    for i in range(1, n_lines + 1):
        indent = "    " * rng.randint(0, 3)
        if rng.random() < 0.2:
            text = "# " + prose(rng, rng.randint(4, 12))
        else:
            text = "%s_%d = %s(%s)" % (rng.choice(WORDS), i, rng.choice(WORDS),
                                       ", ".join(rng.choice(WORDS) for _ in range(3)))
        lines.append("%6d\t%s%s" % (i, indent, text))
    return "\n".join(lines)


def grow_conversation(rng, body):
    """Adds turns of tool calls and their results (files read) to body's
    messages, as a long session does, until the body is LARGE_BYTES."""
    messages = body["messages"]
    size = len(json.dumps(body, separators=(",", ":")))
    n = 0
    while size < LARGE_BYTES:
        n += 1
        tool_id = "toolu_%024x" % rng.getrandbits(96)
        call = {"role": "assistant", "content": [
            {"type": "text", "text": prose(rng, rng.randint(15, 40))},
            {"type": "tool_use", "id": tool_id, "name": "ReadFile",
             "input": {"path": "/src/%s_%d.py" % (rng.choice(WORDS), n)}}]}
        result = {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tool_id,
             "content": file_text(rng, rng.randint(60, 200))}]}
        messages += [call, result]
        size += len(json.dumps([call, result], separators=(",", ":"))) - 1
    last = messages[-1]["content"]
    last.append({"type": "text", "text": "Go on with the next step.",
                 "cache_control": {"type": "ephemeral"}})
    # Trim the last file read until the body fits, as build_body does.
    keep = len(last[0]["content"])
    while True:
        last[0]["content"] = last[0]["content"][:keep]
        excess = len(json.dumps(body, separators=(",", ":"))) - LARGE_BYTES
        if excess <= 0:
            return body
        keep -= excess


def headers(session_id, stream):
    betas = [
        "claude-code-20250219", "oauth-2025-04-20",
        "interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14",
        "context-management-2025-06-27", "context-1m-2025-08-07",
        "effort-2025-11-24", "tool-examples-2025-10-29",
    ]
    h = [
        ("accept", "application/json"),
        ("content-type", "application/json"),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", ",".join(betas)),
        ("anthropic-dangerous-direct-browser-access", "true"),
        ("user-agent", "claude-cli/2.1.14 (external, sdk-cli)"),
        ("x-app", "cli"),
        ("x-claude-code-session-id", session_id),
        ("x-stainless-arch", "x64"),
        ("x-stainless-lang", "js"),
        ("x-stainless-os", "Linux"),
        ("x-stainless-package-version", "0.70.0"),
        ("x-stainless-retry-count", "0"),
        ("x-stainless-runtime", "node"),
        ("x-stainless-runtime-version", "v22.19.0"),
        ("x-stainless-timeout", "600"),
    ]
    if stream:
        h.append(("x-stainless-helper-method", "stream"))
    return h


def chat_body(body, stream):
    """The same request as a client of OpenAI's Chat Completions sends it:
    the system prompt as a system message, the tools as functions, the
    thinking as a reasoning effort, the user's id as `user`."""
    chat = {
        "model": body["model"],
        "messages": [{"role": "system",
                      "content": [{"type": "text", "text": b["text"]}
                                  for b in body["system"] if b["text"]]}]
        + [{"role": m["role"], "content": [{"type": "text", "text": b["text"]}
                                            for b in m["content"]]}
           for m in body["messages"]],
        "tools": [{"type": "function",
                   "function": {"name": t["name"], "description": t["description"],
                                "parameters": t["input_schema"]}} for t in body["tools"]],
        "max_completion_tokens": body["max_tokens"],
        "reasoning_effort": "high",
        "user": body["metadata"]["user_id"],
        "stream": stream,
    }
    if stream:
        chat["stream_options"] = {"include_usage": True}
    return chat


def chat_headers(stream):
    return [
        ("accept", "text/event-stream" if stream else "application/json"),
        ("content-type", "application/json"),
        ("user-agent", "OpenAI/JS 6.49.0"),
        ("x-stainless-lang", "js"),
        ("x-stainless-package-version", "6.49.0"),
        ("x-stainless-retry-count", "0"),
        ("x-stainless-runtime", "node"),
    ]


def usage(output_tokens):
    return {"input_tokens": 9, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 19000,
            "cache_creation": {"ephemeral_5m_input_tokens": 0,
                               "ephemeral_1h_input_tokens": 0},
            "output_tokens": output_tokens, "service_tier": "standard"}


def answers():
    words = ("Hello there, this fixed answer stands in for the model so that "
             "only the gateway path is measured and nothing else changes from "
             "one run to the next in this benchmark of proxy cost per call").split()
    msg = {"id": "msg_bench00000000000000001", "type": "message",
           "role": "assistant", "model": MODEL,
           "content": [{"type": "text", "text": " ".join(words[:12])}],
           "stop_reason": "end_turn", "stop_sequence": None,
           "usage": usage(36)}
    start = dict(msg, content=[], stop_reason=None, usage=usage(1))
    events = [("message_start", {"type": "message_start", "message": start}),
              ("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}})]
    for i in range(35):
        events.append(("content_block_delta",
                       {"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta",
                                  "text": words[i % len(words)] + " "}}))
    events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
               ("message_delta", {"type": "message_delta",
                                  "delta": {"stop_reason": "end_turn",
                                            "stop_sequence": None},
                                  "usage": {"output_tokens": 36}}),
               ("message_stop", {"type": "message_stop"})]
    assert len(events) == 40
    sse = "".join("event: %s\ndata: %s\n\n" % (name, json.dumps(data, separators=(",", ":")))
                  for name, data in events)
    return json.dumps(msg, separators=(",", ":")), sse


def eventstream_message(payload):
    """One AWS event-stream message: prelude, headers, payload, CRCs."""
    headers = b""
    for name, value in ((":event-type", "chunk"), (":content-type", "application/json"),
                        (":message-type", "event")):
        headers += struct.pack(">B", len(name)) + name.encode() + b"\x07"
        headers += struct.pack(">H", len(value)) + value.encode()
    total = 16 + len(headers) + len(payload)
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def bedrock_stream(sse):
    """The SSE answer's events as Bedrock's chunk messages."""
    out = b""
    for record in sse.split("\n\n"):
        for line in record.splitlines():
            if line.startswith("data: "):
                data = line[6:].encode()
                payload = json.dumps({"bytes": base64.b64encode(data).decode(),
                                      "p": "abcdefghijklmnopqrstuvwxyzABCDEF"[:len(data) % 32]},
                                     separators=(",", ":"))
                out += eventstream_message(payload.encode())
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_body.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    body, session_id = build_body(random.Random(SEED))
    for name, stream in (("nonstream", False), ("stream", True)):
        body["stream"] = stream
        with open(os.path.join(out, "body-%s.json" % name), "w") as f:
            f.write(json.dumps(body, separators=(",", ":")))
        with open(os.path.join(out, "headers-%s.txt" % name), "w") as f:
            f.writelines("%s: %s\n" % kv for kv in headers(session_id, stream))
        with open(os.path.join(out, "body-openai_%s.json" % name), "w") as f:
            f.write(json.dumps(chat_body(body, stream), separators=(",", ":")))
        with open(os.path.join(out, "headers-openai_%s.txt" % name), "w") as f:
            f.writelines("%s: %s\n" % kv for kv in chat_headers(stream))
    body["stream"] = False
    large = grow_conversation(random.Random(SEED + 1), copy.deepcopy(body))
    with open(os.path.join(out, "body-large.json"), "w") as f:
        f.write(json.dumps(large, separators=(",", ":")))
    msg, sse = answers()
    with open(os.path.join(out, "answer-message.json"), "w") as f:
        f.write(msg)
    with open(os.path.join(out, "answer-sse.txt"), "w") as f:
        f.write(sse)
    with open(os.path.join(out, "answer-bedrock.eventstream"), "wb") as f:
        f.write(bedrock_stream(sse))
    for mode in ("bedrock_stream", "bedrock_sigv4_stream"):
        for name, ext in (("body", "json"), ("headers", "txt")):
            with open(os.path.join(out, "%s-stream.%s" % (name, ext))) as f, \
                    open(os.path.join(out, "%s-%s.%s" % (name, mode, ext)), "w") as g:
                g.write(f.read())


if __name__ == "__main__":
    main()
