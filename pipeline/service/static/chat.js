// kb chat page: the conversation over /v1/chat/completions (streamed), no external resources.
"use strict";
(function () {
  const KEY = "kb-bearer-key";
  const log = document.getElementById("log");
  const form = document.getElementById("ask");
  const input = document.getElementById("question");
  const send = document.getElementById("send");
  const keyBox = document.getElementById("key-box");
  const keyInput = document.getElementById("key");
  const keyError = document.getElementById("key-error");
  let messages = [];

  function headers() {
    const h = { "content-type": "application/json" };
    const key = sessionStorage.getItem(KEY);
    if (key) h.authorization = "Bearer " + key;
    return h;
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function link(href, text) {
    const a = el("a", "", text);
    a.href = href;
    return a;
  }

  function clock(seconds) {  // floored, as pipeline.textio.clock
    const s = Math.max(0, Math.floor(Number(seconds) || 0));
    const p = (n) => String(n).padStart(2, "0");
    return p(Math.floor(s / 3600)) + ":" + p(Math.floor((s % 3600) / 60)) + ":" + p(s % 60);
  }

  async function checkKey() {
    const r = await fetch("v1/models", { headers: headers() });
    keyBox.hidden = r.status !== 401;
    if (r.status === 401 && sessionStorage.getItem(KEY)) {
      keyError.textContent = "That key was refused.";
      keyError.hidden = false;
    }
    return r.ok;
  }

  document.getElementById("key-save").addEventListener("click", async () => {
    sessionStorage.setItem(KEY, keyInput.value.trim());
    keyInput.value = "";
    if (await checkKey()) keyError.hidden = true;
  });

  document.getElementById("new").addEventListener("click", () => {
    messages = [];
    log.textContent = "";
    input.focus();
  });

  function render(box, text, extra) {
    box.textContent = "";
    let body = text;
    if (body.startsWith("Answering: ")) {
      const nl = body.indexOf("\n");
      box.appendChild(el("p", "answered", nl < 0 ? body : body.slice(0, nl)));
      body = nl < 0 ? "" : body.slice(nl).trimStart();
    }
    const cut = body.indexOf("\n\nSources:\n");
    if (extra && cut >= 0) body = body.slice(0, cut);
    if (extra) {
      box.appendChild(el("span", "badge " + (extra.uncertain ? "uncertain" : "certain"), extra.uncertain ? "uncertain" : "answered from the knowledge base"));
    }
    box.appendChild(el("p", "text", body));
    if (!extra) return;
    if (extra.citations && extra.citations.length) {
      const list = el("ol", "citations");
      for (const c of extra.citations) {
        const item = el("li");
        item.appendChild(link(c.atom_url || ("v1/atoms/" + encodeURIComponent(c.atom_id)), c.title));
        item.appendChild(document.createTextNode(" [" + c.atom_id + "]"));
        const src = (c.sources || [])[0];
        if (src) {
          const moment = (c.source_urls || [])[0];
          const what = src.interview ? (src.speaker || "") + " at " + clock(src.start) : (src.document || "") + (src.heading ? " § " + src.heading : "");
          item.appendChild(document.createTextNode(" — "));
          item.appendChild(moment ? link(moment, what) : document.createTextNode(what));
        }
        list.appendChild(item);
      }
      box.appendChild(list);
    }
    if (extra.suggestions && extra.suggestions.length) {
      box.appendChild(el("p", "suggestions-head", "Closest atoms (suggestions, not an answer):"));
      const list = el("ul", "suggestions");
      for (const s of extra.suggestions) {
        const item = el("li");
        item.appendChild(link("v1/atoms/" + encodeURIComponent(s.atom_id), s.title));
        list.appendChild(item);
      }
      box.appendChild(list);
    }
  }

  async function ask(question) {
    const user = el("div", "turn user");
    user.appendChild(el("p", "text", question));
    log.appendChild(user);
    const box = el("div", "turn assistant");
    box.appendChild(el("p", "text", "…"));
    log.appendChild(box);
    const sent = messages.concat([{ role: "user", content: question }]);
    const r = await fetch("v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify({ model: "kb", messages: sent, stream: true }) });
    if (!r.ok) {
      let message = "HTTP " + r.status;
      try { message = (await r.json()).error.message; } catch (e) { /* not JSON */ }
      box.textContent = "";
      box.appendChild(el("p", "error", message));
      if (r.status === 401) checkKey();
      return;
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", text = "", extra = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        const choice = (chunk.choices || [])[0];
        if (choice && choice.delta && choice.delta.content) {
          text += choice.delta.content;
          render(box, text, null);
        }
        if (choice && choice.finish_reason) extra = chunk;
      }
    }
    render(box, text, extra || { uncertain: true, citations: [], suggestions: [] });
    // the newest answer (its citations and suggestions last) above the fixed question form, not under it
    window.scrollTo(0, document.documentElement.scrollHeight);
    const cited = extra && !extra.uncertain ? extra.citations.map((c) => ({ atom_id: c.atom_id })) : [];
    messages = sent.concat([{ role: "assistant", content: text, citations: cited }]);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    input.value = "";
    send.disabled = true;
    try { await ask(question); } finally { send.disabled = false; input.focus(); }
  });

  checkKey();
})();
