// The assistant's face: a small SVG whose eyes and mouth follow the chat's mood (set by the model through
// the `chat.set_mood` tool) and which bobs while an answer is being written. Animation is pure CSS.

const SVG = "http://www.w3.org/2000/svg";

// mouth path, eye shape, brow path per mood; unknown moods fall back to "neutral".
const MOODS = {
  neutral: { mouth: "M11 23h10", eyes: "round" },
  happy: { mouth: "M10 21q6 6 12 0", eyes: "round" },
  excited: { mouth: "M10 20q6 8 12 0z", eyes: "wide" },
  playful: { mouth: "M10 21q6 5 12-1", eyes: "wink" },
  curious: { mouth: "M13 23q3-2 6 0", eyes: "wide", brows: "M9 10l5-1M18 9l5 2" },
  thinking: { mouth: "M12 23h6", eyes: "up", brows: "M9 10l5 0M18 9l5-1" },
  focused: { mouth: "M12 23h8", eyes: "narrow", brows: "M9 10l5 1M18 11l5-1" },
  surprised: { mouth: "M16 24a2.5 3 0 1 0 0.01 0", eyes: "wide", brows: "M9 8l5-1M18 7l5 1" },
  confused: { mouth: "M11 23q3-2 5 0t5 0", eyes: "round", brows: "M9 10l5-2M18 9l5 1" },
  sad: { mouth: "M10 25q6-5 12 0", eyes: "round", brows: "M9 9l5 2M18 11l5-2" },
  worried: { mouth: "M11 24q5-3 10 0", eyes: "round", brows: "M9 10l5-2M18 8l5 2" },
  sleepy: { mouth: "M13 23h6", eyes: "closed" },
};
const ALIASES = { joyful: "happy", glad: "happy", cheerful: "happy", content: "happy", calm: "neutral",
  pensive: "thinking", thoughtful: "thinking", puzzled: "confused", amazed: "surprised", unhappy: "sad",
  anxious: "worried", tired: "sleepy", enthusiastic: "excited", interested: "curious", mischievous: "playful" };

export function moodName(mood) {
  const key = String(mood || "neutral").trim().toLowerCase();
  if (MOODS[key]) return key;
  if (ALIASES[key]) return ALIASES[key];
  return Object.keys(MOODS).find((m) => key.includes(m)) || "neutral";
}

function node(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function eyes(kind) {
  const g = node("g", { class: "ancia-eyes" });
  for (const x of [12, 20]) {
    if (kind === "closed" || (kind === "wink" && x === 20)) {
      g.append(node("path", { d: `M${x - 2.2} 15q2.2 2 4.4 0`, class: "ancia-line" }));
    } else if (kind === "narrow") {
      g.append(node("rect", { x: x - 2, y: 14.2, width: 4, height: 1.8, rx: 0.9, class: "ancia-eye" }));
    } else {
      const r = kind === "wide" ? 2.3 : 1.9;
      g.append(node("circle", { cx: x, cy: kind === "up" ? 13.6 : 15, r, class: "ancia-eye" }));
    }
  }
  return g;
}

// Returns { el, update(mood, busy) }.
export function createAvatar(size = 28) {
  const el = document.createElement("span");
  el.className = "ancia-avatar";
  el.setAttribute("role", "img");
  const svg = node("svg", { viewBox: "0 0 32 32", width: size, height: size, "aria-hidden": "true" });
  el.append(svg);
  let current = null;

  function update(mood, busy) {
    const name = moodName(mood);
    const label = mood ? String(mood) : "neutral";
    el.setAttribute("aria-label", `Assistant mood: ${label}`);
    el.title = `Mood: ${label}`;
    el.dataset.mood = name;
    el.classList.toggle("ancia-busy", Boolean(busy));
    if (current === name) return;
    current = name;
    const spec = MOODS[name];
    svg.replaceChildren(
      node("circle", { cx: 16, cy: 16, r: 14, class: "ancia-face" }),
      node("circle", { cx: 7.5, cy: 20, r: 2.2, class: "ancia-cheek" }),
      node("circle", { cx: 24.5, cy: 20, r: 2.2, class: "ancia-cheek" }),
      eyes(spec.eyes),
      spec.brows ? node("path", { d: spec.brows, class: "ancia-line ancia-brows" }) : node("g", {}),
      node("path", { d: spec.mouth, class: `ancia-line ancia-mouth${spec.mouth.endsWith("z") || name === "surprised" ? " ancia-filled" : ""}` }),
    );
  }

  update(null, false);
  return { el, update };
}
