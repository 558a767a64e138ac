// The dashboard of the credits demo platform: plain JavaScript, no build
// step, nothing fetched from elsewhere. Every figure comes from the ledger's
// HTTP API (credithttp, under /api/); the page redraws when the ledger's
// event stream says something happened to the account.
"use strict";

(() => {
  const HISTORY_PAGE = 12;
  const ACTIVITY_LIMIT = 6;
  const ENTRY_TYPES = ["grant", "hold", "capture", "release", "hold_expired", "charge", "refund",
    "expiry", "debit", "void", "note", "grant_expiring", "balance_low", "balance_recovered", "account"];

  const $ = (id) => document.getElementById(id);

  const state = {
    me: null,            // /app/me: user, accounts, plans, packs
    account: "",         // the account shown
    tools: [],           // the catalog's tools
    toolNames: {},
    quote: null,         // {quote, sealed, key}: the quote shown, waiting for confirmation
    job: null,           // {hold, key, tool, total, status}: the last generation started here
    purchase: null,      // {id, pack}: the armed purchase
    history: [],         // entries shown, newest first
    historyNext: 0,      // cursor of the older page; 0: none
    events: null,        // the EventSource
    seq: null,           // the account's seq read before the figures shown: the events stream starts after it
    refreshing: false,
    refreshAgain: false,
    refreshTimer: 0,
    pollTimer: 0,
    failed: false,       // the account could not be shown
    spendingDay: null,
    spendingTool: null,
  };

  // ---- HTTP ---------------------------------------------------------------

  // ApiError is a problem document (RFC 9457) the server answered with.
  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || "HTTP " + status);
      this.status = status;
      this.problem = problem || {};
    }
  }

  // api calls the server. Paths carry only the query parameters each
  // endpoint takes (credithttp refuses any other with a 400, so no
  // cache-busters: the API's responses are no-store anyway). A POST or PUT
  // always says Content-Type: application/json, even without a body: the
  // server refuses any other (a cross-site form cannot send it).
  async function api(method, path, body, headers) {
    const init = { method, headers: Object.assign({ Accept: "application/json" }, headers || {}), credentials: "same-origin" };
    if (method !== "GET" && method !== "HEAD") {
      init.headers["Content-Type"] = "application/json";
      if (body !== undefined) init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!res.ok) {
      if (res.status === 401) {
        window.location.assign("/login?user=" + encodeURIComponent((state.me && state.me.user) || "alice"));
      }
      throw new ApiError(res.status, data);
    }
    return data;
  }

  const acctOf = (account, path) => "/api/accounts/" + encodeURIComponent(account) + path;
  const acct = (path) => acctOf(state.account, path);

  // newID returns a random ID with a prefix: idempotency keys and purchase
  // IDs (crypto.getRandomValues works on plain http too).
  function newID(prefix) {
    const b = new Uint8Array(12);
    crypto.getRandomValues(b);
    return prefix + "_" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  // ---- formatting ---------------------------------------------------------

  // credits formats a decimal string amount ("1234.5") with digit grouping,
  // exactly: amounts are never turned into floats for display.
  function credits(s) {
    if (s === undefined || s === null || s === "") return "–";
    s = String(s);
    let sign = "";
    if (s[0] === "-") { sign = "−"; s = s.slice(1); }
    const [int, frac] = s.split(".");
    const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return sign + grouped + (frac ? "." + frac : "");
  }

  // num is an amount as a number, for drawing charts only.
  const num = (s) => (s ? Number(s) : 0);

  const isZero = (s) => !s || /^-?0*(\.0*)?$/.test(String(s));

  const dateFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", year: "numeric" });
  const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const whenFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

  function relative(t) {
    const d = new Date(t);
    const days = Math.round((d - Date.now()) / 86400000);
    if (days === 0) return "today, " + timeFmt.format(d);
    if (days === 1) return "tomorrow";
    if (days > 1 && days < 60) return "in " + days + " days (" + dateFmt.format(d) + ")";
    return dateFmt.format(d);
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const toolName = (id) => state.toolNames[id] || id || "";

  function capitalize(s) { return s ? s[0].toUpperCase() + s.slice(1) : s; }

  // ---- start --------------------------------------------------------------

  async function start() {
    try {
      state.me = await api("GET", "/app/me");
    } catch (e) {
      showError("Could not load your session", e);
      return;
    }
    const me = state.me;
    $("user-name").textContent = me.user;
    $("user-avatar").textContent = me.user.slice(0, 1);
    const other = me.users.find((u) => u !== me.user);
    if (other) {
      $("switch-user").textContent = "Switch to " + other;
      $("switch-user").href = "/login?user=" + encodeURIComponent(other);
    }
    const params = new URLSearchParams(window.location.search);
    state.account = params.get("account") || me.user;
    fillAccountSelect();
    $("account-select").addEventListener("change", (ev) => switchAccount(ev.target.value));

    try {
      const cat = await api("GET", "/api/catalog");
      state.tools = cat.tools || [];
      for (const t of state.tools) state.toolNames[t.id] = t.name || t.id;
    } catch (e) {
      showError("Could not load the price list", e);
      return;
    }
    fillTools();
    wireForm();
    wireBuy();
    $("history-older").addEventListener("click", loadOlder);
    window.addEventListener("resize", debounce(drawCharts, 150));
    await openAccount();
  }

  function fillAccountSelect() {
    const sel = $("account-select");
    sel.textContent = "";
    const accounts = state.me.accounts.slice();
    if (!accounts.some((a) => a.id === state.account)) {
      accounts.push({ id: state.account, name: "Account" });
    }
    for (const a of accounts) {
      const o = el("option", "", a.team ? a.name + " (team)" : a.name + " · " + a.id);
      o.value = a.id;
      o.selected = a.id === state.account;
      sel.appendChild(o);
    }
  }

  function switchAccount(id) {
    if (id === state.account) return;
    state.account = id;
    const url = new URL(window.location.href);
    if (id === state.me.user) url.searchParams.delete("account"); else url.searchParams.set("account", id);
    window.history.replaceState(null, "", url);
    openAccount();
  }

  // openAccount shows state.account from scratch and subscribes to its
  // events.
  async function openAccount() {
    closeEvents();
    state.failed = false;
    state.seq = null;
    state.quote = null;
    state.job = null;
    state.history = [];
    state.historyNext = 0;
    $("quote-panel").hidden = true;
    $("job").hidden = true;
    $("buy-status").textContent = "";
    armPurchase(state.purchase ? state.purchase.pack : "");
    hideError();
    const info = state.me.accounts.find((a) => a.id === state.account);
    $("account-title").textContent = info ? (info.team ? info.name : "Your credits") : "Account " + state.account;
    $("account-subtitle").textContent = info
      ? (info.team ? "Team account “" + info.id + "” · you spend as " + state.me.user : "Personal account · " + info.id)
      : "";
    $("members-card").hidden = !(info && info.team);
    try {
      await refresh();
    } catch (e) {
      return;
    }
    if (!state.failed) openEvents();
  }

  // ---- live updates -------------------------------------------------------

  // openEvents subscribes to the account's entries after state.seq, the
  // seq read before the figures shown (by the last refresh): every entry
  // they may miss comes on the stream and redraws them, so opening needs no
  // refresh of its own. A reconnecting EventSource resumes after the last
  // event it got (Last-Event-ID), or again after state.seq. (Without a seq
  // yet, the stream starts at the latest entry, and each opening refreshes.)
  function openEvents() {
    if (!window.EventSource) { setLive("polling"); startPolling(); return; }
    const after = state.seq;
    const es = new EventSource(acct("/events") + (after !== null ? "?after=" + after : ""));
    state.events = es;
    setLive("connecting");
    es.onopen = () => {
      setLive("live");
      stopPolling();
      if (after === null) scheduleRefresh();
    };
    es.onerror = () => {
      // The browser reconnects by itself (with Last-Event-ID); meanwhile,
      // poll so that nothing is missed.
      setLive(es.readyState === EventSource.CLOSED ? "polling" : "reconnecting");
      startPolling();
      if (es.readyState === EventSource.CLOSED && !state.failed) {
        setTimeout(() => { if (state.events === es) { closeEvents(); openEvents(); } }, 3000);
      }
    };
    const onEntry = () => scheduleRefresh();
    for (const t of ENTRY_TYPES) es.addEventListener(t, onEntry);
    es.onmessage = onEntry; // an entry type this page does not know yet
  }

  function closeEvents() {
    if (state.events) { state.events.close(); state.events = null; }
    stopPolling();
  }

  function startPolling() {
    if (!state.pollTimer) state.pollTimer = setInterval(() => scheduleRefresh(), 3000);
  }

  function stopPolling() {
    if (state.pollTimer) { clearInterval(state.pollTimer); state.pollTimer = 0; }
  }

  function setLive(s) {
    const box = $("live-status");
    box.dataset.state = s;
    $("live-text").textContent = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", polling: "Updating every few seconds", off: "Offline" }[s] || s;
  }

  function scheduleRefresh() {
    if (state.refreshTimer) return;
    state.refreshTimer = setTimeout(() => {
      state.refreshTimer = 0;
      refresh().catch(() => {});
    }, 60);
  }

  // refresh reloads everything the dashboard shows of the account; calls
  // that come while one runs make it run once more after.
  async function refresh() {
    if (state.refreshing) { state.refreshAgain = true; return; }
    state.refreshing = true;
    let err = null;
    try {
      do {
        state.refreshAgain = false;
        try {
          await refreshOnce();
          err = null;
        } catch (e) {
          err = e;
        }
      } while (state.refreshAgain && !state.failed);
    } finally {
      state.refreshing = false;
    }
    if (err) throw err;
  }

  async function refreshOnce() {
    const account = state.account;
    const since = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() - 13)).toISOString();
    const info = state.me.accounts.find((a) => a.id === account);
    // The account first: its seq is that of its last entry, and every
    // figure read after it shows that entry at least; the events stream
    // opens after it (openEvents).
    let acc, balance;
    try {
      acc = await api("GET", acctOf(account, ""));
      balance = await api("GET", acctOf(account, "/balance"));
    } catch (e) {
      if (account === state.account) failAccount(e);
      throw e;
    }
    // The running job's hold is read before the history, so that the
    // history read after it has the entry that settled it.
    const job = state.job;
    const hold = job && job.status === "running" ? await api("GET", acctOf(account, "/holds/" + encodeURIComponent(job.hold))).catch(() => null) : null;
    const [activity, byTool, byDay, byMember] = await Promise.all([
      api("GET", acctOf(account, "/activity?limit=" + ACTIVITY_LIMIT)),
      api("GET", acctOf(account, "/spending?by=tool")),
      api("GET", acctOf(account, "/spending?by=day&since=" + encodeURIComponent(since))),
      info && info.team ? api("GET", acctOf(account, "/spending?by=member")) : Promise.resolve(null),
      loadNewHistory(account),
    ]);
    if (account !== state.account) return; // switched meanwhile
    if (state.seq === null || acc.seq > state.seq) state.seq = acc.seq;
    $("dashboard").hidden = false;
    showBalance(balance);
    showPlan(balance);
    showActivity(activity);
    state.spendingTool = byTool;
    state.spendingDay = byDay;
    drawCharts();
    if (byMember) showMembers(byMember, acc);
    showHistory();
    if (hold && state.job === job) updateJob(job, hold);
  }

  function failAccount(e) {
    state.failed = true;
    closeEvents();
    setLive("off");
    $("dashboard").hidden = true;
    for (const id of ["balance-available", "balance-held"]) { $(id).textContent = "–"; $(id).dataset.value = ""; }
    if (e instanceof ApiError && e.status === 403) {
      showError("You can't open this account", e, "You (" + state.me.user + ") have no access to account “" + state.account + "”.");
    } else if (e instanceof ApiError && e.status === 404) {
      showError("No such account", e, "There is no account “" + state.account + "”.");
    } else {
      showError("Could not load the account", e);
    }
  }

  function showError(title, e, lead) {
    const box = $("error");
    box.textContent = "";
    box.appendChild(el("strong", "", title));
    const p = e instanceof ApiError ? e.problem : {};
    const status = e instanceof ApiError ? " (" + e.status + (p.code ? " " + p.code : "") + ")" : "";
    box.appendChild(el("span", "", (lead ? lead + " " : "") + (p.detail || e.message || String(e)) + status));
    box.hidden = false;
  }

  function hideError() { $("error").hidden = true; $("error").textContent = ""; }

  // ---- balance and plan ---------------------------------------------------

  function showBalance(b) {
    $("balance-available").textContent = credits(b.available);
    $("balance-available").dataset.value = b.available;
    $("balance-free").textContent = credits(b.free);
    $("balance-paid").textContent = credits(b.paid);
    $("balance-held").textContent = credits(b.held);
    $("balance-held").dataset.value = b.held;
    const total = num(b.free) + num(b.paid) + num(b.held);
    const pct = (v) => (total > 0 ? (100 * num(v)) / total : 0).toFixed(2) + "%";
    const m = $("balance-meter").children;
    m[0].style.width = pct(b.free);
    m[1].style.width = pct(b.paid);
    m[2].style.width = pct(b.held);
    const exp = b.next_expiry;
    $("next-expiry").textContent = exp
      ? credits(exp.amount) + " free credits expire " + relative(exp.at) + "."
      : "None of these credits expire.";
  }

  function showPlan(b) {
    const plan = (state.me.plans || []).find((p) => p.id === b.plan);
    if (!b.plan) {
      $("plan-name").textContent = "No plan";
      $("plan-discount").textContent = "List prices on every tool.";
      $("plan-allowance-box").hidden = true;
      return;
    }
    $("plan-name").textContent = plan ? plan.name || capitalize(plan.id) : b.plan;
    const perks = [];
    const overrides = Object.entries((plan && plan.overrides) || {});
    if (plan && plan.discount_bp) perks.push(plan.discount_bp / 100 + "% off " + (overrides.length ? "the other tools" : "every tool"));
    for (const [tool, o] of overrides) {
      if (o.price) perks.unshift(toolName(tool) + " at " + credits(o.price) + " credits");
    }
    $("plan-discount").textContent = perks.join(" · ") || "Plan prices.";
    const al = plan && plan.allowance;
    $("plan-allowance-box").hidden = !al;
    if (al) {
      $("plan-allowance").textContent = credits(al.amount) + " credits / " + al.period;
      const rolls = al.rollover_max && !isZero(al.rollover_max);
      $("plan-rollover-row").hidden = !rolls;
      if (rolls) $("plan-rollover").textContent = "up to " + credits(al.rollover_max) + " unused";
      $("plan-renews").textContent = b.renews_at ? relative(b.renews_at) : "–";
    }
  }

  // ---- buying credits -----------------------------------------------------

  function wireBuy() {
    const packs = $("packs");
    for (const p of state.me.packs) {
      const b = el("button", "pack");
      b.type = "button";
      b.setAttribute("role", "radio");
      b.dataset.pack = p.id;
      b.dataset.testid = "pack-" + p.id;
      b.appendChild(el("strong", "", credits(p.credits)));
      b.appendChild(el("span", "", p.price));
      b.addEventListener("click", () => { armPurchase(p.id); $("buy-status").textContent = ""; });
      packs.appendChild(b);
    }
    $("buy").addEventListener("click", buy);
  }

  // armPurchase starts a new purchase of pack: its ID is made now, once, so
  // that clicking Buy twice pays (and credits) once.
  function armPurchase(pack) {
    const packs = state.me ? state.me.packs : [];
    if (!packs.length) return;
    const p = packs.find((x) => x.id === pack) || packs[0];
    state.purchase = { id: newID("pur"), pack: p.id, done: false };
    for (const b of $("packs").children) b.setAttribute("aria-checked", String(b.dataset.pack === p.id));
    $("buy").textContent = "Buy " + credits(p.credits) + " credits · " + p.price;
    $("buy").dataset.purchase = state.purchase.id;
  }

  async function buy() {
    const purchase = state.purchase;
    const pack = state.me.packs.find((p) => p.id === purchase.pack);
    const status = $("buy-status");
    if (!purchase.done) status.textContent = "Paying…";
    try {
      const res = await api("POST", "/app/buy", { account: state.account, pack: purchase.pack, purchase_id: purchase.id });
      if (res.credited) {
        purchase.done = true;
        status.textContent = "Payment received: +" + credits(res.credits) + " credits. The provider's webhook came " +
          res.deliveries.length + " times; credited once.";
      } else {
        purchase.done = true;
        status.textContent = "This purchase was already paid and credited once (+" + credits(pack.credits) + "); paying again changes nothing.";
      }
      const again = el("button", "button-link", "Buy more");
      again.type = "button";
      again.id = "buy-new";
      again.addEventListener("click", () => { armPurchase(purchase.pack); status.textContent = ""; });
      status.append(" ", again);
      scheduleRefresh();
    } catch (e) {
      status.textContent = "Payment failed: " + e.message;
    }
  }

  // ---- generating ---------------------------------------------------------

  function fillTools() {
    const sel = $("tool");
    for (const t of state.tools) {
      const o = el("option", "", t.name || t.id);
      o.value = t.id;
      sel.appendChild(o);
    }
    const video = state.tools.find((t) => t.id === "video");
    if (video) sel.value = "video";
    toolChanged();
  }

  function currentTool() { return state.tools.find((t) => t.id === $("tool").value); }

  function toolChanged() {
    const t = currentTool();
    if (!t) return;
    const perSecond = t.unit === "second";
    $("resolution-field").hidden = !perSecond;
    $("duration-field").hidden = !perSecond;
    $("images-field").hidden = perSecond;
    if (perSecond) {
      const res = $("resolution");
      const keep = res.value;
      res.textContent = "";
      const names = Object.keys(t.rates || {}).sort((a, b) => num(t.rates[a]) - num(t.rates[b]));
      for (const r of names) {
        const o = el("option", "", r + " · " + credits(t.rates[r]) + "/s");
        o.value = r;
        res.appendChild(o);
      }
      res.value = names.includes(keep) ? keep : names.includes("720p") ? "720p" : names[0];
      $("duration").max = String(Math.floor((t.max_duration_ms || 600000) / 1000));
    } else {
      $("images").max = String(t.max_images || 16);
    }
  }

  function wireForm() {
    const form = $("generate-form");
    $("tool").addEventListener("change", () => { toolChanged(); dropQuote(); });
    for (const id of ["resolution", "duration", "images", "prompt"]) $(id).addEventListener("input", dropQuote);
    form.addEventListener("submit", (ev) => { ev.preventDefault(); getQuote(); });
    $("confirm").addEventListener("click", confirmQuote);
    $("cancel-quote").addEventListener("click", dropQuote);
  }

  function dropQuote() {
    state.quote = null;
    $("quote-panel").hidden = true;
  }

  async function getQuote() {
    const t = currentTool();
    if (!t) return;
    const req = { tool: t.id };
    if (t.unit === "second") {
      req.resolution = $("resolution").value;
      const secs = Number($("duration").value);
      req.duration_ms = Math.round((Number.isFinite(secs) ? secs : 0) * 1000);
    } else {
      req.images = Math.round(Number($("images").value) || 1);
    }
    const btn = $("get-quote");
    btn.disabled = true;
    try {
      const res = await api("POST", acct("/quote"), req);
      // The confirmation's idempotency key is made with the quote: a
      // second click on Confirm (or a retry) reserves once.
      state.quote = { quote: res.quote, sealed: res.sealed, key: newID("gen"), prompt: $("prompt").value.trim() };
      $("quote-total").textContent = credits(res.quote.total);
      $("quote-total").dataset.value = res.quote.total;
      $("quote-breakdown").textContent = res.quote.breakdown;
      $("quote-expires").textContent = "Price held until " + timeFmt.format(new Date(res.quote.expires_at)) +
        ". Up to " + credits(res.quote.total) + " credits are reserved while the job runs; you pay for what it produces, never more.";
      $("quote-panel").hidden = false;
      $("confirm").disabled = false;
      // A refusal of an earlier confirmation no longer applies.
      if ($("job").dataset.status === "error") $("job").hidden = true;
    } catch (e) {
      showJob("error", "No quote", e.message);
    } finally {
      btn.disabled = false;
    }
  }

  async function confirmQuote() {
    const q = state.quote;
    if (!q) return;
    const body = { quote: q.sealed };
    if (q.prompt) body.metadata = { prompt: q.prompt };
    try {
      const res = await api("POST", acct("/reserve"), body, { "Idempotency-Key": q.key });
      if (state.quote === q) dropQuote();
      state.job = { hold: res.hold.id, key: q.key, tool: res.hold.quote.tool, total: res.hold.amount, status: "running", prompt: q.prompt };
      renderJob();
      scheduleRefresh();
    } catch (e) {
      if (!(e instanceof ApiError) || e.status >= 500) {
        // The server failed, or the network: the reserve may have been
        // made. Confirm again sends the same key, and holds once.
        showJob("error", "Could not start the generation", e.message.replace(/\.$/, "") + ". Confirm again to retry: it holds the credits once.");
        return;
      }
      // Refused. The ledger keeps a refusal under its key and answers
      // every retry of that key with it, even once the reason is gone (the
      // credits bought, the limit raised): forget the quote and its key, so
      // that the next attempt quotes again, under a new key.
      if (state.quote === q) dropQuote();
      showRefusal(e.problem, q);
    }
  }

  // showRefusal says why a confirmation was refused, and what to do.
  function showRefusal(p, q) {
    const cost = credits(p.required || q.quote.total);
    switch (p.code) {
      case "insufficient_credits":
        showJob("error", "Not enough credits", "This costs " + cost + ", you have " + credits(p.available) +
          ". Buy credits, then get a new quote.");
        break;
      case "member_limit":
        showJob("error", "Over your team limit", "This costs " + cost + "; your spending limit on this team has " +
          credits(p.remaining) + " credits left this period. Get a new quote once the limit allows it.");
        break;
      case "quote_expired":
        showJob("error", "The quote expired", "Get a new quote to see the current price.");
        break;
      default:
        showJob("error", "Could not start the generation", (p.detail || p.title || "Refused").replace(/\.$/, "") + ". Get a new quote to try again.");
    }
  }

  function showJob(status, title, detail) {
    const box = $("job");
    box.dataset.status = status;
    $("job-title").textContent = title;
    $("job-status").textContent = detail;
    box.hidden = false;
  }

  function renderJob() {
    const j = state.job;
    if (!j) return;
    const what = toolName(j.tool) + (j.prompt ? " · “" + j.prompt + "”" : "");
    switch (j.status) {
      case "running":
        showJob("running", "Generating…", credits(j.total) + " credits held while " + what + " runs.");
        break;
      case "done":
        showJob("done", "Done", what + ": charged " + credits(j.charged) + " credits" +
          (isZero(j.back) ? "." : ", " + credits(j.back) + " back (the output was shorter than quoted)."));
        break;
      case "failed":
        showJob("failed", "Failed: credits returned", (j.reason ? capitalize(j.reason) : "The generation failed") +
          ". The hold is released: all " + credits(j.total) + " credits are back.");
        break;
      case "expired":
        showJob("failed", "Expired: credits returned", "The job did not finish in time, so its hold lapsed: all " + credits(j.total) + " credits are back.");
        break;
    }
  }

  // updateJob says how the running job ended, from its hold and the
  // history (read after the hold).
  function updateJob(j, h) {
    const settledBy = (type) => state.history.find((e) => e.hold === j.hold && e.type === type);
    if (h.status === "captured") {
      j.status = "done";
      j.charged = h.captured;
      const release = settledBy("release");
      j.back = release ? release.amount : "0";
    } else if (h.status === "released") {
      j.status = "failed";
      const release = settledBy("release");
      j.reason = release ? release.note : "";
    } else if (h.status === "expired") {
      j.status = "expired";
    }
    renderJob();
  }

  // ---- activity -----------------------------------------------------------

  const statusLabel = { open: "Running", captured: "Done", released: "Failed", expired: "Expired" };

  function showActivity(page) {
    const list = $("activity");
    list.textContent = "";
    const gens = (page && page.generations) || [];
    $("activity-empty").hidden = gens.length > 0;
    for (const g of gens) {
      const li = el("li");
      li.dataset.hold = g.hold;
      li.dataset.status = g.status;
      const label = g.one_step ? "Done" : statusLabel[g.status] || g.status;
      li.appendChild(el("span", "pill pill-" + (g.one_step ? "captured" : g.status), label));
      const main = el("div", "gen-main");
      const q = g.quote || {};
      const details = [];
      if (q.resolution) details.push(q.resolution + " · " + (q.duration_ms / 1000) + " s");
      else if (q.images > 1) details.push(q.images + " images");
      if (g.member) details.push(g.member);
      const prompt = (g.metadata && g.metadata.prompt) || "";
      details.push(prompt ? "“" + prompt + "”" : whenFmt.format(new Date(g.started_at)));
      main.appendChild(el("div", "gen-tool", toolName(q.tool)));
      main.appendChild(el("div", "gen-prompt", details.join(" · ")));
      main.title = details.join(" · ");
      li.appendChild(main);
      const cost = el("div", "gen-cost");
      if (g.status === "open") {
        cost.textContent = credits(g.held);
        cost.appendChild(el("small", "", "held"));
      } else if (g.status === "captured") {
        cost.textContent = credits(g.net);
        cost.appendChild(el("small", "", isZero(g.released) ? "charged" : "of " + credits(g.held) + " quoted"));
      } else {
        cost.textContent = "0";
        cost.appendChild(el("small", "", credits(g.returned) + " back"));
      }
      li.appendChild(cost);
      list.appendChild(li);
    }
  }

  // ---- history ------------------------------------------------------------

  // loadNewHistory adds the entries newer than the newest shown (all of the
  // first page when none are), keeping the older pages already loaded.
  async function loadNewHistory(account) {
    if (!state.history.length) {
      const page = await api("GET", acctOf(account, "/history?limit=" + HISTORY_PAGE));
      if (account !== state.account || state.history.length) return;
      state.history = page.entries || [];
      state.historyNext = page.next || 0;
      return;
    }
    const top = state.history[0].seq;
    let after = top;
    const fresh = [];
    for (;;) {
      const page = await api("GET", acctOf(account, "/history?after=" + after + "&limit=200"));
      const entries = page.entries || [];
      fresh.push(...entries);
      if (!page.next || !entries.length) break;
      after = page.next;
    }
    // Another account, or another refresh that got there first.
    if (account !== state.account || !state.history.length || state.history[0].seq !== top) return;
    fresh.reverse();
    state.history = fresh.concat(state.history);
  }

  async function loadOlder() {
    if (!state.historyNext) return;
    const btn = $("history-older");
    const account = state.account;
    const before = state.historyNext;
    btn.disabled = true;
    try {
      const page = await api("GET", acctOf(account, "/history?before=" + before + "&limit=" + HISTORY_PAGE));
      if (account !== state.account || state.historyNext !== before) return;
      state.history = state.history.concat(page.entries || []);
      state.historyNext = page.next || 0;
      showHistory();
    } catch (e) {
      showJob("error", "Could not load older entries", e.message);
    } finally {
      btn.disabled = false;
    }
  }

  const kindLabel = { signup: "Signup credits", daily: "Daily reward", purchase: "Purchase", promo: "Promotional credits", plan: "Plan allowance", adjustment: "Adjustment" };

  function describe(e) {
    const tool = toolName(e.tool);
    const by = e.member ? " · " + e.member : "";
    switch (e.type) {
      case "grant": return [kindLabel[e.kind] || "Grant", e.note];
      case "hold": return ["Held for " + tool + by, "job started"];
      case "capture": return ["Charged for " + tool + by, "taken from the hold"];
      case "release": return ["Released · " + tool + by, e.note];
      case "hold_expired": return ["Hold expired · " + tool + by, "the job did not finish in time"];
      case "charge": return ["Charged for " + tool + by, ""];
      case "refund": return ["Refund · " + tool + by, e.note];
      case "expiry": return ["Expired · " + (kindLabel[e.kind] || e.kind || "credits"), ""];
      case "debit": return ["Debit", e.note];
      case "void": return ["Grant voided", e.note];
      case "note": return ["Note", e.note];
      case "grant_expiring": return ["Credits expiring soon", (kindLabel[e.kind] || "") + ""];
      case "balance_low": return ["Balance low", "below the account's threshold"];
      case "balance_recovered": return ["Balance recovered", ""];
      case "account": return ["Account updated", e.note];
      default: return [e.type, e.note];
    }
  }

  function availableDelta(e) {
    if (["grant", "release", "hold_expired", "refund"].includes(e.type)) return e.amount;
    if (["hold", "charge", "expiry", "debit", "void"].includes(e.type)) return isZero(e.amount) ? "0" : "-" + e.amount;
    return "";
  }

  function showHistory() {
    const body = $("history");
    body.textContent = "";
    for (const e of state.history) {
      const tr = el("tr");
      tr.dataset.type = e.type;
      tr.dataset.seq = e.seq;
      if (e.hold) tr.dataset.hold = e.hold;
      tr.appendChild(el("td", "when", whenFmt.format(new Date(e.at))));
      const [title, note] = describe(e);
      const what = el("td");
      what.appendChild(el("span", "entry-type", title));
      if (note) what.appendChild(el("span", "entry-note", note));
      what.appendChild(el("span", "entry-when", whenFmt.format(new Date(e.at))));
      tr.appendChild(what);
      const d = availableDelta(e);
      let change;
      if (e.type === "capture") change = el("td", "num zero", credits(e.amount) + " spent");
      else if (d === "" || isZero(d)) change = el("td", "num zero", "—");
      else if (d[0] === "-") change = el("td", "num minus", credits(d));
      else change = el("td", "num plus", "+" + credits(d));
      tr.appendChild(change);
      tr.appendChild(el("td", "num", credits(e.available)));
      body.appendChild(tr);
    }
    $("history-older").hidden = !state.historyNext;
  }

  // ---- charts (inline SVG) ------------------------------------------------

  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function drawCharts() {
    if (state.spendingTool) drawToolChart(state.spendingTool);
    if (state.spendingDay) drawDayChart(state.spendingDay);
  }

  function drawToolChart(rep) {
    const box = $("chart-tool");
    box.textContent = "";
    const lines = (rep.lines || []).filter((l) => !isZero(l.net)).sort((a, b) => num(b.net) - num(a.net));
    $("spend-total").textContent = rep.total && !isZero(rep.total.net) ? credits(rep.total.net) + " credits in all" : "";
    if (!lines.length) { box.appendChild(el("p", "empty", "Nothing spent yet.")); return; }
    const width = Math.max(box.clientWidth || 480, 260);
    const labelW = Math.min(150, Math.round(width * 0.36));
    const valueW = 64;
    const row = 30, barH = 14;
    const height = lines.length * row;
    const s = svg("svg", { viewBox: "0 0 " + width + " " + height, width, height, role: "img", "aria-label": "Spending by tool" });
    const max = Math.max(...lines.map((l) => num(l.net)));
    const span = width - labelW - valueW;
    lines.forEach((l, i) => {
      const y = i * row;
      const w = Math.max(2, (span * num(l.net)) / max);
      const g = svg("g", { "data-group": l.group });
      g.appendChild(svg("text", { x: 0, y: y + row / 2 + 4, class: "label" }, toolName(l.group)));
      g.appendChild(svg("rect", { x: labelW, y: y + (row - barH) / 2, width: span, height: barH, rx: 4, class: "track" }));
      g.appendChild(svg("rect", { x: labelW, y: y + (row - barH) / 2, width: w, height: barH, rx: 4, class: "bar" }));
      g.appendChild(svg("text", { x: width, y: y + row / 2 + 4, "text-anchor": "end", class: "value" }, credits(l.net)));
      const tip = svg("title", {}, toolName(l.group) + ": " + credits(l.net) + " credits in " + l.charges + " generation" + (l.charges === 1 ? "" : "s"));
      g.appendChild(tip);
      s.appendChild(g);
    });
    box.appendChild(s);
  }

  function drawDayChart(rep) {
    const box = $("chart-day");
    box.textContent = "";
    const byDay = {};
    for (const l of rep.lines || []) byDay[l.group] = l;
    const days = [];
    const now = new Date();
    for (let i = 13; i >= 0; i--) {
      const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - i));
      const key = d.toISOString().slice(0, 10);
      days.push({ key, date: d, net: byDay[key] ? num(byDay[key].net) : 0, label: byDay[key] ? byDay[key].net : "0" });
    }
    const width = Math.max(box.clientWidth || 480, 260);
    const height = 170;
    const top = 18, bottom = 22;
    const plotH = height - top - bottom;
    const max = Math.max(1, ...days.map((d) => d.net));
    const slot = width / days.length;
    const barW = Math.max(4, Math.min(28, slot * 0.62));
    const s = svg("svg", { viewBox: "0 0 " + width + " " + height, width, height, role: "img", "aria-label": "Spending by day, last 14 days" });
    s.appendChild(svg("line", { x1: 0, x2: width, y1: top + plotH + 0.5, y2: top + plotH + 0.5, class: "axis" }));
    const every = slot < 34 ? 3 : slot < 48 ? 2 : 1;
    days.forEach((d, i) => {
      const x = i * slot + (slot - barW) / 2;
      const h = d.net > 0 ? Math.max(2, (plotH * d.net) / max) : 0;
      const g = svg("g", { "data-day": d.key });
      if (h > 0) {
        g.appendChild(svg("rect", { x, y: top + plotH - h, width: barW, height: h, rx: 3, class: i === days.length - 1 ? "bar" : "bar bar-alt" }));
        // The value above the bar, kept inside the chart at its edges.
        const cx = x + barW / 2;
        const anchor = cx > width - 24 ? "end" : cx < 24 ? "start" : "middle";
        const tx = anchor === "end" ? x + barW : anchor === "start" ? x : cx;
        g.appendChild(svg("text", { x: tx, y: top + plotH - h - 5, "text-anchor": anchor, class: "value" }, credits(d.label)));
      }
      if ((days.length - 1 - i) % every === 0) {
        g.appendChild(svg("text", { x: i * slot + slot / 2, y: height - 5, "text-anchor": "middle", class: "tick" },
          i === days.length - 1 ? "Today" : dayFmt.format(d.date)));
      }
      g.appendChild(svg("title", {}, dayFmt.format(d.date) + ": " + credits(d.label) + " credits"));
      s.appendChild(g);
    });
    box.appendChild(s);
  }

  // ---- team members -------------------------------------------------------

  function showMembers(rep, acc) {
    const list = $("members");
    list.textContent = "";
    const members = rep.members || [];
    const period = members.length ? members[0].period : (acc.limits && acc.limits.period) || "month";
    $("members-period").textContent = "spent this " + period + " against each member's limit";
    for (const m of members) {
      const li = el("li");
      li.dataset.member = m.member;
      const top = el("div", "member-top");
      const name = el("span", "member-name", m.member);
      if (m.member === state.me.user) name.appendChild(el("span", "member-you", " (you)"));
      top.appendChild(name);
      const fig = m.limit ? credits(m.used) + " of " + credits(m.limit) : credits(m.used) + " · no limit";
      top.appendChild(el("span", "member-figure", fig));
      li.appendChild(top);
      const bar = el("div", "member-bar");
      const fill = el("span");
      const ratio = m.limit && num(m.limit) > 0 ? Math.min(1, num(m.used) / num(m.limit)) : 0;
      fill.style.width = (ratio * 100).toFixed(1) + "%";
      if (ratio >= 1) fill.className = "full"; else if (ratio >= 0.8) fill.className = "high";
      bar.appendChild(fill);
      li.appendChild(bar);
      if (m.remaining) li.appendChild(el("div", "note", credits(m.remaining) + " left" + (m.default_limit ? " (team default)" : "")));
      list.appendChild(li);
    }
  }

  function debounce(fn, ms) {
    let t = 0;
    return () => { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
