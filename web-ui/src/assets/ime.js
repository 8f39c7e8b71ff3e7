"use strict";
// The board's on-screen keyboard with pinyin input (the kiosk has no keyboard and no input
// method). The lexicon is pinyin-pro's modern-Chinese word list with frequencies
// (/assets/pinyin.json, built by web-ui/ime/build-dict.mjs); this file segments what was
// typed into syllables and offers words, then characters, most frequent first.
//
// Keys are buttons that never take the focus, so the text field keeps its caret; a tap
// inserts at the caret and fires an `input` event like typing would.

const IME = {
  dict: null,
  // First syllable → keys starting with it, in the lexicon's (frequency) order.
  byFirst: new Map(),
  syllables: new Set(),
  prefixes: new Set(),

  async load() {
    if (this.dict) return;
    const r = await fetch("/assets/pinyin.json");
    if (!r.ok) throw new Error(`pinyin lexicon: HTTP ${r.status}`);
    this.index(await r.json());
  },

  index(dict) {
    this.dict = dict;
    for (const key of Object.keys(dict)) {
      const syl = key.split("'");
      for (const s of syl) {
        this.syllables.add(s);
        for (let i = 1; i <= s.length; i++) this.prefixes.add(s.slice(0, i));
      }
      if (!this.byFirst.has(syl[0])) this.byFirst.set(syl[0], []);
      this.byFirst.get(syl[0]).push(key);
    }
  },

  // Splits letters (and ' separators) into the fewest syllables; the last may be the
  // start of one ("qingj" → qing, j). Returns null when the input cannot be pinyin.
  segment(input) {
    const parts = input.toLowerCase().split("'").filter(Boolean);
    const out = [];
    for (let p = 0; p < parts.length; p++) {
      const s = parts[p];
      const last = p === parts.length - 1;
      const memo = new Map();
      const best = i => {
        if (i === s.length) return [];
        if (memo.has(i)) return memo.get(i);
        let found = null;
        for (let j = s.length; j > i; j--) {
          const piece = s.slice(i, j);
          const full = this.syllables.has(piece);
          const partial = last && j === s.length && this.prefixes.has(piece);
          if (!full && !partial) continue;
          const rest = best(j);
          if (rest && (!found || rest.length + 1 < found.length)) found = [piece, ...rest];
        }
        memo.set(i, found);
        return found;
      };
      const seg = best(0);
      if (!seg) return null;
      out.push(...seg);
    }
    return out;
  },

  words(key) {
    const w = this.dict[key];
    if (!w) return [];
    const n = key.split("'").length;
    const chars = [...w];
    const out = [];
    for (let i = 0; i < chars.length; i += n) out.push(chars.slice(i, i + n).join(""));
    return out;
  },

  // Keys of `k` syllables matching syl[0..k]; the last syllable of the input may be partial.
  keysFor(syl, k) {
    const partialLast = k === syl.length && !this.syllables.has(syl[k - 1]);
    const exact = syl.slice(0, k).join("'");
    if (!partialLast) return this.dict[exact] ? [exact] : [];
    const firsts = k === 1 ? [...this.byFirst.keys()].filter(f => f.startsWith(syl[0])) : [syl[0]];
    const out = [];
    for (const f of firsts) {
      for (const key of this.byFirst.get(f) || []) {
        const ks = key.split("'");
        if (ks.length !== k) continue;
        if (ks.every((s, i) => (i === k - 1 ? s.startsWith(syl[i]) : s === syl[i]))) out.push(key);
        if (out.length > 60) break;
      }
    }
    return out;
  },

  // Candidates for `input`: [{text, used}] where `used` is how many syllables it takes.
  candidates(input, max = 40) {
    if (!this.dict) return [];
    const syl = this.segment(input);
    if (!syl || !syl.length) return [];
    const out = [];
    const seen = new Set();
    const add = (text, used) => {
      if (!seen.has(text) && out.length < max) { seen.add(text); out.push({ text, used }); }
    };
    // Longest first: a word for the whole input, then for fewer syllables.
    const byLength = [];
    for (let k = syl.length; k >= 1; k--) {
      byLength.push([k, this.keysFor(syl, k).flatMap(key => this.words(key))]);
    }
    // No word covers the whole input: compose one from the longest words left to right.
    if (syl.length > 1 && !byLength[0][1].length) {
      let i = 0, text = "";
      while (i < syl.length) {
        let k = syl.length - i, w = null;
        for (; k >= 1 && !w; k--) w = this.keysFor(syl.slice(i), k).flatMap(key => this.words(key))[0];
        if (!w) break;
        text += w;
        i += [...w].length;
      }
      if (i === syl.length) add(text, syl.length);
    }
    for (const [k, words] of byLength) for (const w of words) add(w, k);
    return out;
  },

  // The input left after a candidate took `used` syllables.
  rest(input, used) {
    const syl = this.segment(input) || [];
    return syl.slice(used).join("");
  },
};

// The keyboard itself.
const KBD = {
  target: null,
  zh: true,
  buffer: "",
  page: 0,
  cands: [],
  rows: [
    "1234567890".split(""),
    "qwertyuiop".split(""),
    "asdfghjkl".split(""),
    "zxcvbnm".split(""),
  ],
  punct: { zh: ["，", "。", "？", "！", "、", "："], en: [",", ".", "?", "!", "-", ":"] },

  init() {
    const el = document.getElementById("kbd");
    if (!el) return;
    // Keys never take the focus: the field keeps its caret.
    el.addEventListener("pointerdown", e => { if (e.target.closest("button")) e.preventDefault(); });
    el.addEventListener("mousedown", e => { if (e.target.closest("button")) e.preventDefault(); });
    el.addEventListener("click", e => {
      const b = e.target.closest("button");
      if (b) this.press(b.dataset.k);
    });
    document.addEventListener("focusin", e => {
      const t = e.target;
      if (t.matches && t.matches("input:not([type]), input[type=text], textarea") && !t.closest("#kbd")) this.open(t);
    });
    this.render();
  },

  async open(target) {
    this.target = target;
    this.buffer = "";
    document.getElementById("kbd").classList.remove("hidden");
    document.body.classList.add("kbd-open");
    this.render();
    try { await IME.load(); this.render(); } catch (e) {
      // Without the lexicon the keyboard still types letters.
      this.zh = false; this.render();
    }
  },

  close() {
    this.commitBuffer();
    document.getElementById("kbd").classList.add("hidden");
    document.body.classList.remove("kbd-open");
    if (this.target) this.target.blur();
    this.target = null;
  },

  insert(text) {
    const t = this.target;
    if (!t) return;
    const max = t.maxLength > 0 ? t.maxLength : Infinity;
    const room = max - t.value.length + (t.selectionEnd - t.selectionStart);
    const s = [...text].slice(0, Math.max(0, room)).join("");
    if (!s) return;
    t.setRangeText(s, t.selectionStart, t.selectionEnd, "end");
    t.dispatchEvent(new Event("input", { bubbles: true }));
  },

  backspace() {
    const t = this.target;
    if (!t) return;
    let a = t.selectionStart, b = t.selectionEnd;
    if (a === b && a > 0) {
      // One character, not half of a surrogate pair.
      const before = [...t.value.slice(0, a)];
      a -= before[before.length - 1].length;
    }
    t.setRangeText("", a, b, "end");
    t.dispatchEvent(new Event("input", { bubbles: true }));
  },

  commitBuffer() {
    if (this.buffer) {
      const c = IME.candidates(this.buffer)[0];
      this.insert(c ? c.text : this.buffer);
      this.buffer = "";
    }
  },

  pick(i) {
    const c = this.cands[i];
    if (!c) return;
    this.insert(c.text);
    this.buffer = IME.rest(this.buffer, c.used);
    this.page = 0;
  },

  press(k) {
    if (!k) return;
    if (k === "close") return this.close();
    if (k === "mode") { this.commitBuffer(); this.zh = !this.zh; }
    else if (k.startsWith("cand-")) this.pick(+k.slice(5));
    else if (k === "prev") this.page = Math.max(0, this.page - 1);
    else if (k === "next") this.page += 1;
    else if (k === "back") { if (this.buffer) this.buffer = this.buffer.slice(0, -1); else this.backspace(); }
    else if (k === "space") { if (this.buffer) this.pick(0); else this.insert(" "); }
    else if (k === "enter") { if (this.buffer) { this.insert(this.buffer); this.buffer = ""; } else if (this.target && this.target.tagName === "TEXTAREA") this.insert("\n"); else this.close(); }
    else if (/^[a-z]$/.test(k) && this.zh) { if (this.buffer.length < 24) this.buffer += k; this.page = 0; }
    else if (k.startsWith("p-")) { this.commitBuffer(); this.insert(this.punct[this.zh ? "zh" : "en"][+k.slice(2)]); }
    else { this.commitBuffer(); this.insert(k); }
    this.render();
  },

  render() {
    const el = document.getElementById("kbd");
    if (!el) return;
    const zh = typeof S !== "undefined" && S.lang === "en" ? false : true;
    const PER = 8;
    this.cands = this.buffer ? IME.candidates(this.buffer) : [];
    const pages = Math.max(1, Math.ceil(this.cands.length / PER));
    this.page = Math.min(this.page, pages - 1);
    const shown = this.cands.slice(this.page * PER, this.page * PER + PER);
    const key = (k, label, cls = "", aria = "") =>
      `<button type="button" class="key ${cls}" data-k="${k}" data-testid="kbd-${k}"${aria ? ` aria-label="${aria}"` : ""}>${label}</button>`;
    const row = keys => `<div class="krow">${keys.join("")}</div>`;
    el.innerHTML = `
      <div class="kbar">
        <span class="comp" data-testid="kbd-comp">${this.buffer ? (IME.segment(this.buffer) || [this.buffer]).join("'") : ""}</span>
        <span class="cands">${shown.map((c, i) => key("cand-" + (this.page * PER + i), c.text, "cand")).join("")}</span>
        ${this.cands.length > PER ? key("prev", "‹", "nav", zh ? "上一页" : "Previous") + key("next", "›", "nav", zh ? "下一页" : "Next") : ""}
      </div>
      ${row(this.rows[0].map(k => key(k, k)))}
      ${row(this.rows[1].map(k => key(k, k)))}
      ${row(this.rows[2].map(k => key(k, k)).concat([key("back", "⌫", "wide", zh ? "删除" : "Backspace")]))}
      ${row(this.rows[3].map(k => key(k, k)).concat(this.punct[this.zh ? "zh" : "en"].slice(0, 2).map((p, i) => key("p-" + i, p))))}
      ${row([
        key("mode", this.zh ? "中" : "英", "wide mode", zh ? (this.zh ? "中文输入，点按切换到英文" : "英文输入，点按切换到中文") : (this.zh ? "Chinese input; tap for English" : "English input; tap for Chinese")),
        ...this.punct[this.zh ? "zh" : "en"].slice(2).map((p, i) => key("p-" + (i + 2), p)),
        key("space", zh ? "空格" : "space", "space"),
        key("enter", zh ? "确定" : "enter", "wide"),
        key("close", zh ? "收起" : "hide", "wide"),
      ])}`;
  },
};
