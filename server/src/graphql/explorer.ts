/**
 * A small self-contained GraphQL explorer (query, variables, API key, result), served at
 * `GET /graphql` to browsers outside production. It loads nothing from elsewhere: its one script
 * and style are allowed by hash in its Content-Security-Policy, and it talks only to `/graphql`.
 * The API key typed into it stays in the page (never stored).
 */
import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';

const STYLE = `body{font:14px system-ui,sans-serif;margin:0;display:grid;grid-template-columns:1fr 1fr;grid-template-rows:auto 1fr 8em;height:100vh}
header{grid-column:1/3;padding:.5em;background:#223;color:#fff;display:flex;gap:.5em;align-items:center}
textarea,pre{font:13px ui-monospace,monospace;margin:0;padding:.5em;border:1px solid #ccc;overflow:auto}
#result{grid-column:2;grid-row:2/4;background:#f7f7f9}input{flex:1}`;

const SCRIPT = `const $=(id)=>document.getElementById(id);
$('query').value='query Checkpoint {\\n  ledgerCheckpoint { origin treeSize rootHash }\\n}';
$('run').addEventListener('click',async()=>{
  let variables;
  try{variables=$('variables').value.trim()?JSON.parse($('variables').value):undefined}catch(e){$('result').textContent='variables: '+e.message;return}
  const res=await fetch(location.pathname,{method:'POST',headers:{'content-type':'application/json',accept:'application/graphql-response+json','authorization':'Bearer '+$('key').value},body:JSON.stringify({query:$('query').value,variables})});
  const text=await res.text();
  try{$('result').textContent=res.status+'\\n'+JSON.stringify(JSON.parse(text),null,2)}catch{$('result').textContent=res.status+'\\n'+text}
});`;

const sha256 = (s: string) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>SMEDREC Audit GraphQL explorer</title><style>${STYLE}</style></head>
<body><header><strong>GraphQL explorer</strong><input id="key" type="password" placeholder="API key" autocomplete="off"><button id="run">Run</button></header>
<textarea id="query" spellcheck="false" aria-label="query"></textarea><pre id="result" aria-live="polite"></pre>
<textarea id="variables" spellcheck="false" aria-label="variables (JSON)" placeholder="variables (JSON)"></textarea>
<script>${SCRIPT}</script></body></html>`;

const CSP = `default-src 'none'; script-src ${sha256(SCRIPT)}; style-src ${sha256(STYLE)}; connect-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'`;

/**
 * Answers a browser's plain `GET /graphql` (HTML accepted, no `query` parameter) with the
 * explorer page; every other request goes on to the GraphQL handler.
 */
export const explorer: RequestHandler = (req, res, next) => {
  const wantsPage = req.method === 'GET' && req.query.query === undefined && (req.get('accept') ?? '').includes('text/html');
  if (!wantsPage) return next();
  res.setHeader('content-security-policy', CSP);
  res.type('html').send(PAGE);
};
