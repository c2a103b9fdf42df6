// Measures one page for tests/browser/test_phone_fit.py; returns {problems, links}.
// Sizes in CSS px: controls at least 44x44 and 8 px apart, links in running text at
// least 24 px high, nothing wider than the screen.
({screen}) => {
  const MIN_TARGET = 44, MIN_GAP = 8, MIN_TEXT_LINK = 24;
  const problems = [];
  const px = n => Math.round(n * 10) / 10;

  const describe = el => {
    let name = el.tagName.toLowerCase();
    if (el.id) name += "#" + el.id;
    const classes = [...el.classList].slice(0, 3);
    if (classes.length) name += "." + classes.join(".");
    if (el.type && el.tagName === "INPUT") name += `[type=${el.type}]`;
    if (el.name) name += `[name=${el.name}]`;
    const text = (el.innerText || el.value || el.getAttribute("aria-label") || "")
      .trim().replace(/\s+/g, " ").slice(0, 40);
    const place = el.closest("[id]:not(body):not(html)");
    const where = place && place !== el ? ` in #${place.id}` : "";
    return `${name}${text ? ` "${text}"` : ""}${where}`;
  };

  const visible = el => {
    // checkVisibility: also false inside a closed <details> (content-visibility: hidden).
    if (!el.checkVisibility({visibilityProperty: true, opacityProperty: true})) return false;
    if (!el.getClientRects().length) return false;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none") return false;
    const r = el.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1) return false; // visually hidden (.sr)
    return r.right + scrollX > 0; // not parked off screen (the skip link until focused)
  };

  const pinned = el => {
    for (let e = el; e; e = e.parentElement) {
      const p = getComputedStyle(e).position;
      if (p === "fixed" || p === "sticky") return true;
    }
    return false;
  };

  // 1. Overflow: against the screen, since the layout viewport grows with the content.
  const width = document.documentElement.scrollWidth;
  if (width > screen) {
    const culprits = [...document.body.querySelectorAll("*")]
      .filter(el => el.getClientRects().length && el.getBoundingClientRect().right + scrollX > screen + 0.5)
      .filter(el => ![...el.children].some(c => c.getBoundingClientRect().right + scrollX > screen + 0.5));
    const named = culprits.slice(0, 4).map(el => `${describe(el)} to ${px(el.getBoundingClientRect().right + scrollX)}px`);
    problems.push(`page is ${width}px wide (screen ${screen}px): ${named.join("; ")}`);
  }

  // 2. Links: standalone ones are controls; those in running text only need height.
  const inRunningText = a => {
    if (getComputedStyle(a).display !== "inline") return false;
    let block = a.parentElement;
    while (block && getComputedStyle(block).display === "inline") block = block.parentElement;
    if (!block) return false;
    const walker = document.createTreeWalker(block, NodeFilter.SHOW_TEXT);
    let other = "";
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const owner = n.parentElement;
      if (owner.closest("a, button, label, select, textarea, .chip, .badge, .count, .sr")) continue;
      if (!visible(owner)) continue;
      other += n.textContent;
    }
    return other.replace(/[\s·|•—–:;,.()\/\-→←]/g, "") !== "";
  };

  const targets = new Map();
  const addTarget = (el, of) => { if (visible(el) && !targets.has(el)) targets.set(el, of); };
  for (const el of document.querySelectorAll("button, select, textarea, input, a[href], [role=button], label.chip, a.chip")) {
    if (!visible(el) && !(el.tagName === "INPUT")) continue;
    if (el.tagName === "INPUT" && el.type === "hidden") continue;
    if (el.tagName === "INPUT" && (el.type === "checkbox" || el.type === "radio")) {
      // A box is tapped through its label: that is the target that must be big.
      const label = el.closest("label") || (el.id && document.querySelector(`label[for="${el.id}"]`));
      addTarget(label || el, el);
      continue;
    }
    if (el.tagName === "A" && inRunningText(el)) {
      const lines = [...el.getClientRects()];
      const low = Math.min(...lines.map(r => r.height));
      if (lines.length && low < MIN_TEXT_LINK) {
        problems.push(`link in text ${describe(el)} is ${px(low)}px high (needs ${MIN_TEXT_LINK})`);
      }
      continue;
    }
    addTarget(el, el);
  }

  const boxes = [];
  for (const [el] of targets) {
    const r = el.getBoundingClientRect();
    const box = {el, fixed: pinned(el), left: r.left + scrollX, right: r.right + scrollX,
                 top: r.top + scrollY, bottom: r.bottom + scrollY};
    boxes.push(box);
    if (r.width < MIN_TARGET - 0.5 || r.height < MIN_TARGET - 0.5) {
      problems.push(`target ${describe(el)} is ${px(r.width)}x${px(r.height)}px (needs ${MIN_TARGET}x${MIN_TARGET})`);
    }
  }

  // 3. Spacing between neighbours (nested targets, e.g. a label around a button, and a
  //    pinned bar against the page scrolling under it, are not neighbours).
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.fixed !== b.fixed || a.el.contains(b.el) || b.el.contains(a.el)) continue;
      const dx = Math.max(0, Math.max(a.left, b.left) - Math.min(a.right, b.right));
      const dy = Math.max(0, Math.max(a.top, b.top) - Math.min(a.bottom, b.bottom));
      const gap = Math.hypot(dx, dy);
      if (gap < MIN_GAP - 0.5) {
        problems.push(`targets ${describe(a.el)} and ${describe(b.el)} are ${px(gap)}px apart (needs ${MIN_GAP})`);
      }
    }
  }

  // 4. A table running past its sideways scroller: columns (the Net) out of sight.
  for (const scroller of document.querySelectorAll("*")) {
    const overflow = getComputedStyle(scroller).overflowX;
    if ((overflow !== "auto" && overflow !== "scroll") || !visible(scroller)) continue;
    if (scroller.scrollWidth > scroller.clientWidth + 1 && scroller.querySelector("table")) {
      problems.push(`${describe(scroller)} hides ${scroller.scrollWidth - scroller.clientWidth}px of its table sideways`);
    }
  }

  // 5. A select showing less than its chosen option ("Todos los oficic").  The arrow
  //    takes about 20 px of the padding box in Chromium.
  const canvas = document.createElement("canvas").getContext("2d");
  for (const select of document.querySelectorAll("select")) {
    if (!visible(select) || select.selectedIndex < 0) continue;
    const style = getComputedStyle(select);
    canvas.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const text = select.options[select.selectedIndex].text;
    const room = select.clientWidth - parseFloat(style.paddingLeft) - Math.max(parseFloat(style.paddingRight), 20);
    const need = canvas.measureText(text).width;
    if (need > room + 1) {
      problems.push(`select ${describe(select)} cuts "${text}" (${px(need)}px in ${px(room)}px)`);
    }
  }

  const links = [...document.querySelectorAll("a[href]")]
    .filter(a => !a.hasAttribute("download") && !/^(mailto|tel|geo|sms):/.test(a.getAttribute("href")))
    .map(a => a.href.split("#")[0]);
  return {problems, links};
}
