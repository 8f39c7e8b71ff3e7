// Builds the lexicon of the board's pinyin keyboard (web-ui/src/assets/pinyin.json) from
// pinyin-pro's modern-Chinese word list with frequencies (@pinyin-pro/data, ISC licence,
// the data package of the maintained pinyin-pro library, MIT):
//
//   cd web-ui/ime && npm ci && node build-dict.mjs ../src/assets/pinyin.json
//
// Output: {"<toneless syllables joined by '>": "<words of that reading, most frequent
// first, concatenated>"}; every word of a key has one character per syllable, so the
// board splits the string into words of that length. Keys are written most frequent
// (by their first word) first, so a scan in insertion order meets likely words first.
//
// - Words: 1-4 Han characters whose reading has one syllable per character; ü is v.
// - Characters: the list lacks some common ones as words of their own (明), so each
//   character's reading is also scored by the words it occurs in: a character's score is
//   its own frequency plus that of every word it occurs in with that reading.
// - A short list of school words the list lacks (中国, 同学们, 晨检 …), read by
//   pinyin-pro itself, with a middling frequency.
//
// ./scripts/test rebuilds it and fails when the committed file differs.
import fs from 'node:fs';
import { pinyin } from 'pinyin-pro';

const out = process.argv[2];
if (!out) {
  console.error('usage: node build-dict.mjs OUT.json');
  process.exit(2);
}
const modern = JSON.parse(fs.readFileSync(new URL('./node_modules/@pinyin-pro/data/json/modern.json', import.meta.url), 'utf8'));
const SCHOOL = [
  '中国', '你好', '同学们', '老师们', '家长们', '班主任', '晨检', '午检', '晚检', '到校', '返校',
  '离校', '放学', '值日生', '运动会', '期中考试', '期末考试', '家长会', '体温', '复测', '咳嗽',
  '腹泻', '呕吐', '皮疹', '病假', '事假', '停课', '调课', '代课', '补课', '课间', '课表', '教室',
  '室内', '校服', '水彩笔', '美术课', '体育课', '音乐课', '班会', '升旗', '眼保健操', '课间操',
  '午休', '午餐', '食堂', '春游', '秋游', '研学', '安全', '防溺水', '消防', '演练', '疏散', '签字',
];
const plain = p => p.normalize('NFD').replace(/u\u0308/g, 'v').replace(/[\u0300-\u036f]/g, '').replace(/ü/g, 'v').toLowerCase();
const HAN = /^[\u4e00-\u9fff]+$/u;
const words = new Map(); // key → Map(word → freq)
const add = (key, word, freq) => {
  if (!words.has(key)) words.set(key, new Map());
  const m = words.get(key);
  m.set(word, Math.max(m.get(word) || 0, freq));
};
const charScore = new Map(); // "char syllable" → score
for (const [word, [reading, freq]] of Object.entries(modern)) {
  const chars = [...word];
  if (chars.length > 4 || !HAN.test(word)) continue;
  const syl = plain(reading).split(/\s+/);
  if (syl.length !== chars.length || !syl.every(s => /^[a-z]+$/.test(s))) continue;
  add(syl.join("'"), word, freq);
  chars.forEach((c, i) => {
    const k = `${c} ${syl[i]}`;
    charScore.set(k, (charScore.get(k) || 0) + freq);
  });
}
for (const [k, score] of charScore) {
  const [c, s] = k.split(' ');
  add(s, c, score);
}
const known = new Set(Object.keys(modern));
for (const w of SCHOOL) {
  if (known.has(w)) continue;
  const syl = pinyin(w, { toneType: 'none', v: true, type: 'array' });
  if (syl.length === [...w].length) add(syl.join("'"), w, 1e-9);
}
const entries = [...words.entries()].map(([k, m]) => [k, [...m.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))]);
entries.sort((a, b) => b[1][0][1] - a[1][0][1] || (a[0] < b[0] ? -1 : 1));
const dict = {};
for (const [k, ws] of entries) dict[k] = ws.map(w => w[0]).join('');
fs.writeFileSync(out, JSON.stringify(dict) + '\n');
console.log(`${out}: ${entries.length} readings, ${entries.reduce((n, e) => n + e[1].length, 0)} words`);
