// The dpx status page: fetches /_dpx/page.json every few seconds and fills
// the page. Every figure goes in as a text node (textContent), never as
// markup: repository names and upstream messages come from outside.
"use strict";

(function () {
  const REFRESH_MS = 5000;
  const SVG = "http://www.w3.org/2000/svg";
  const body = document.body;

  // Script errors, counted where a test (or a curious person) can read them.
  function countError() {
    body.dataset.errors = String(Number(body.dataset.errors || 0) + 1);
  }
  window.addEventListener("error", countError);
  window.addEventListener("unhandledrejection", countError);

  const $ = (id) => document.getElementById(id);

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let v = Number(n) || 0;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i += 1;
    }
    return i === 0 ? v + " B" : v.toFixed(1) + " " + units[i];
  }

  function ago(now, then) {
    const s = Math.max(0, now - then);
    if (s < 5) return "just now";
    if (s < 60) return s + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m ago";
    if (s < 86400) return Math.floor(s / 3600) + "h ago";
    return Math.floor(s / 86400) + "d ago";
  }

  function iso(secs) {
    return new Date(secs * 1000).toISOString().replace(".000Z", "Z");
  }

  // A cell with a time: "5m ago", the exact time on hover.
  function timeCell(now, secs) {
    const td = el("td", ago(now, secs));
    td.title = iso(secs);
    td.dataset.time = String(secs);
    return td;
  }

  function fill(tbody, rows, emptyNote) {
    tbody.replaceChildren(...rows);
    $(emptyNote).hidden = rows.length > 0;
  }

  function renderUpstreams(data) {
    const rows = data.upstreams.map((u) => {
      const tr = el("tr");
      tr.dataset.registry = u.registry;
      tr.dataset.answers = String(u.answers);
      tr.append(
        el("td", u.registry),
        el("td", u.answers ? "yes" : "no", u.answers ? "ok" : "bad"),
        timeCell(data.now, u.at),
        el("td", u.problem || (u.status ? "HTTP " + u.status : ""))
      );
      return tr;
    });
    fill($("upstreams").tBodies[0], rows, "upstreams-empty");
  }

  function renderQuota(data) {
    const rows = data.quota.map((q) => {
      const tr = el("tr");
      tr.dataset.registry = q.registry;
      tr.dataset.identity = q.identity;
      const left = el("td", q.remaining ?? "?", "num");
      left.dataset.value = q.remaining ?? "";
      let hold = "";
      if (q.hold) {
        hold = "held since " + iso(q.hold.since) + "; next check " + iso(q.hold.next_probe_at);
      }
      tr.append(
        el("td", q.registry),
        el("td", q.identity + (q.account !== q.identity ? " (" + q.account + ")" : "")),
        left,
        el("td", q.limit ?? "?", "num"),
        timeCell(data.now, q.seen_at),
        el("td", hold, q.hold ? "bad" : "")
      );
      return tr;
    });
    fill($("quota").tBodies[0], rows, "quota-empty");
  }

  function renderCache(data) {
    const c = data.cache;
    if (!c) return;
    $("cache-size").textContent = bytes(c.size);
    $("cache-size").dataset.bytes = String(c.size);
    $("cache-max").textContent =
      c.max_size == null
        ? "(no max_size: nothing is evicted)"
        : "of " + bytes(c.max_size) + " max_size (" + Math.round((100 * c.size) / c.max_size) + "%)";
    $("cache-max").dataset.bytes = c.max_size == null ? "" : String(c.max_size);
    $("cache-blobs").textContent = String(c.blobs);
    $("cache-images").textContent = String(c.images.length);
    const meter = $("cache-meter");
    meter.hidden = c.max_size == null;
    meter.value = c.max_size ? Math.min(1, c.size / c.max_size) : 0;
  }

  function setFigure(id, value) {
    $(id).textContent = String(value);
    $(id).dataset.value = String(value);
  }

  function renderPulls(data) {
    const p = data.pulls;
    if (!p) return;
    setFigure("pulls-from-cache", p.from_cache);
    setFigure("pulls-upstream", p.upstream_gets);
    $("pulls-since").textContent = p.since ? "since " + iso(p.since) : "";
    let dayCache = 0;
    let dayUp = 0;
    for (const h of p.hours) {
      dayCache += h.from_cache;
      dayUp += h.upstream_gets;
    }
    setFigure("day-from-cache", dayCache);
    setFigure("day-upstream", dayUp);
    drawChart(p.hours);
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }

  // Two bars an hour: answered from the cache, and GETs sent upstream.
  function drawChart(hours) {
    const chart = $("pulls-chart");
    const W = 600, H = 150, top = 10, bottom = 20;
    const max = Math.max(1, ...hours.map((h) => Math.max(h.from_cache, h.upstream_gets)));
    const slot = W / Math.max(1, hours.length);
    const bar = Math.max(1, (slot - 4) / 2);
    const scale = (v) => ((H - top - bottom) * v) / max;
    const parts = [svg("line", { x1: 0, y1: H - bottom, x2: W, y2: H - bottom })];
    hours.forEach((h, i) => {
      const g = svg("g", { "data-hour": h.hour, "data-from-cache": h.from_cache, "data-upstream": h.upstream_gets });
      const x = i * slot + 2;
      const c = scale(h.from_cache);
      const u = scale(h.upstream_gets);
      g.append(
        svg("rect", { class: "cache", x: x, y: H - bottom - c, width: bar, height: c }),
        svg("rect", { class: "upstream", x: x + bar, y: H - bottom - u, width: bar, height: u })
      );
      const title = svg("title", {});
      const hour = new Date(h.hour * 1000).toISOString().slice(11, 16);
      title.textContent = hour + " UTC: " + h.from_cache + " from the cache, " + h.upstream_gets + " upstream";
      g.append(title);
      if (i % 6 === 0 || i === hours.length - 1) {
        const lastOne = i === hours.length - 1;
        const label = svg("text", { x: lastOne ? W : x, y: H - 5, "text-anchor": lastOne ? "end" : "start" });
        label.textContent = hour;
        g.append(label);
      }
      parts.push(g);
    });
    const peak = svg("text", { x: W - 2, y: top, "text-anchor": "end" });
    peak.textContent = "max " + max + "/h";
    parts.push(peak);
    chart.replaceChildren(...parts);
  }

  function renderDownloads(data) {
    const rows = data.downloads.map((d) => {
      const tr = el("tr");
      tr.dataset.digest = d.digest;
      const bar = el("progress");
      if (d.total) {
        bar.max = d.total;
        bar.value = d.received;
      }
      const done = d.queued ? "waiting for another dpx" : bytes(d.received) + (d.total ? " of " + bytes(d.total) : "");
      const cell = el("td");
      cell.append(bar);
      tr.append(el("td", d.digest.slice(0, 19)), el("td", d.image), el("td", done), cell);
      return tr;
    });
    fill($("downloads").tBodies[0], rows, "downloads-empty");
  }

  // The images table's order: a header click sorts by it, a second click reverses.
  const sort = { key: "last_used", descending: true };

  function sortValue(img, key) {
    switch (key) {
      case "repository": return img.registry + "/" + img.repository;
      case "platforms": return img.platforms.join(",");
      default: return img[key];
    }
  }

  function renderImages(data) {
    const c = data.cache;
    if (!c) return;
    const images = c.images.slice().sort((a, b) => {
      const x = sortValue(a, sort.key);
      const y = sortValue(b, sort.key);
      const order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
      if (order !== 0) return sort.descending ? -order : order;
      // Ties in a stable, readable order: by name.
      return (a.registry + "/" + a.repository + ":" + a.tag).localeCompare(b.registry + "/" + b.repository + ":" + b.tag);
    });
    const rows = images.map((img) => {
      const tr = el("tr");
      tr.dataset.registry = img.registry;
      tr.dataset.repository = img.repository;
      tr.dataset.tag = img.tag;
      tr.dataset.digest = img.digest;
      const size = el("td", bytes(img.size), "num");
      size.dataset.bytes = String(img.size);
      let platforms = img.platforms.join(", ") || "-";
      if (!img.complete) platforms += " (incomplete)";
      tr.append(
        el("td", img.registry + "/" + img.repository, "repository"),
        el("td", img.tag, "tag"),
        el("td", platforms, "platforms"),
        size,
        timeCell(data.now, img.last_used)
      );
      return tr;
    });
    fill($("images").tBodies[0], rows, "images-empty");
    for (const th of $("images").tHead.rows[0].cells) {
      if (th.dataset.key === sort.key) {
        th.setAttribute("aria-sort", sort.descending ? "descending" : "ascending");
      } else {
        th.removeAttribute("aria-sort");
      }
    }
  }

  let last = null;

  function render(data) {
    last = data;
    $("version").textContent = "v" + data.version + " · pid " + data.pid;
    $("updated").textContent = "updated " + iso(data.now) + " · " + data.requests + " requests, " + data.in_flight + " in flight";
    const problem = $("problem");
    problem.textContent = (data.problems || []).join("; ");
    problem.hidden = !data.problems || data.problems.length === 0;
    renderCache(data);
    renderPulls(data);
    renderUpstreams(data);
    renderQuota(data);
    renderDownloads(data);
    renderImages(data);
  }

  const SORT_KEYS = ["repository", "tag", "platforms", "size", "last_used"];

  // The order is kept in the address (`#sort=size`, `#sort=-size` for
  // largest first), so a reload or a shared link keeps it.
  function setSort(key, descending) {
    sort.key = key;
    sort.descending = descending;
    history.replaceState(null, "", "#sort=" + (descending ? "-" : "") + key);
    if (last) renderImages(last);
  }

  const wanted = /^#sort=(-?)([a-z_]+)$/.exec(location.hash);
  if (wanted && SORT_KEYS.includes(wanted[2])) {
    sort.key = wanted[2];
    sort.descending = wanted[1] === "-";
  }

  for (const th of $("images").tHead.rows[0].cells) {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.key;
      setSort(key, sort.key === key ? !sort.descending : key === "size" || key === "last_used");
    });
  }

  async function refresh() {
    try {
      const resp = await fetch("/_dpx/page.json", { cache: "no-store", credentials: "same-origin" });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      render(await resp.json());
      body.dataset.loaded = String(Number(body.dataset.loaded) + 1);
    } catch (e) {
      // dpx stopped, or is restarting: say so, and keep trying.
      body.dataset.fetchFailures = String(Number(body.dataset.fetchFailures) + 1);
      const problem = $("problem");
      problem.textContent = "dpx does not answer (" + e.message + "); trying again";
      problem.hidden = false;
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  refresh();
})();
