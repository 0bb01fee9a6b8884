/**
 * bench:tools' far side, in a process of its own so that none of its work is counted as the
 * gateway's: a model server (OpenAI-compatible SSE) that asks for a tool when the caller spoke last and
 * answers in words once the tool has, and the tool's webhook, which answers at once. Both timestamps of
 * a gap ([DONE] written → next request arriving) are taken here, on one clock. Talks to its parent over
 * IPC: sends `{ modelUrl, webhookUrl }` once listening, and `{ gaps }` when asked with 'report'.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';

const readBody = async (req: IncomingMessage): Promise<string> => {
  let body = '';
  for await (const part of req) body += (part as Buffer).toString();
  return body;
};
async function listen(server: ReturnType<typeof createServer>): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

const webhook = createServer((req, res) => void readBody(req).then(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"open":"nine to five"}')));

let doneAt = 0;
let gaps: number[] = [];
const chunk = (delta: unknown, finish: string | null = null): string =>
  `data: ${JSON.stringify({ id: 'b', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const model = createServer((req, res) => {
  const arrived = performance.now();
  void readBody(req).then((raw) => {
    const afterTool = (JSON.parse(raw) as { messages: { role: string }[] }).messages.at(-1)?.role === 'tool';
    if (afterTool && doneAt > 0) gaps.push(arrived - doneAt);
    doneAt = 0;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (afterTool) return void res.end(chunk({ content: 'We open at nine.' }) + chunk({}, 'stop') + 'data: [DONE]\n\n');
    res.write(chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_hours', arguments: '{"day":' } }] }));
    res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: '"saturday"}' } }] }, 'tool_calls'));
    res.end('data: [DONE]\n\n', () => (doneAt = performance.now()));
  });
});

const [modelUrl, webhookUrl] = await Promise.all([listen(model), listen(webhook)]);
process.on('message', (m) => {
  if (m === 'report') {
    process.send?.({ gaps });
    gaps = [];
  }
  if (m === 'exit') process.exit(0);
});
process.send?.({ modelUrl, webhookUrl });
