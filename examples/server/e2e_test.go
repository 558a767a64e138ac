package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
)

// findChromium returns the path of a Chromium or Chrome binary, or skips
// the test (fails it under CI=true) when there is none.
func findChromium(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("CHROMIUM_PATH"), "chromium", "/usr/bin/chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	msg := "no Chromium found (apt-get install chromium, or set CHROMIUM_PATH): the browser test cannot run"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// testServer is the demo platform running for a test.
type testServer struct {
	url     string
	p       *platform
	proceed chan struct{} // each send lets one generation settle
	buys    atomic.Int32  // /app/buy requests answered

	mu      sync.Mutex
	refused []string // API requests answered 400: a parameter or body the API does not take
	streams []string // the query of each events stream opened
}

// startServer runs the platform on 127.0.0.1:0 on a fresh SQLite file,
// with a fast event stream and a worker whose jobs settle only when the
// test says so.
func startServer(t *testing.T, ctx context.Context) *testServer {
	t.Helper()
	store, err := sqlstore.Open(ctx, "file:"+filepath.Join(t.TempDir(), "e2e.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ts := &testServer{proceed: make(chan struct{})}
	opt := options{
		EventsPoll: 50 * time.Millisecond,
		Worker: workerConfig{
			MinDelay: 10 * time.Millisecond,
			MaxDelay: 20 * time.Millisecond,
			Poll:     20 * time.Millisecond,
			gate: func(ctx context.Context, _ credits.Hold) {
				select {
				case <-ts.proceed:
				case <-ctx.Done():
				}
			},
		},
	}
	p, err := newPlatform(ctx, store, opt)
	if err != nil {
		t.Fatal(err)
	}
	ts.p = p
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.url = "http://" + ln.Addr().String()
	h := p.Handler()
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") && strings.HasSuffix(r.URL.Path, "/events") {
			ts.mu.Lock()
			ts.streams = append(ts.streams, r.URL.RawQuery)
			ts.mu.Unlock()
		}
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if r.URL.Path == "/app/buy" {
			ts.buys.Add(1)
		}
		if strings.HasPrefix(r.URL.Path, "/api/") && sw.status == http.StatusBadRequest {
			ts.mu.Lock()
			ts.refused = append(ts.refused, r.Method+" "+r.URL.RequestURI())
			ts.mu.Unlock()
		}
	})
	srvCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(srvCtx, ln, counted, p.worker) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return ts
}

// statusWriter remembers the status of a response; Unwrap lets the events
// stream flush through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// settleJob lets the worker settle one generation.
func (ts *testServer) settleJob(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case ts.proceed <- struct{}{}:
	case <-ctx.Done():
		t.Fatal("the worker never picked up the job: no generation waited to settle")
	}
}

// browser is one headless Chromium tab, with the test's helpers.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T, ctx context.Context, chromium string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Env("TZ=UTC", "LANG=en_US.UTF-8"),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first Run starts the browser, and it lives as long as tab.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("starting Chromium (%s): %v", chromium, err)
	}
	return &browser{t: t, ctx: tab}
}

// do runs actions, failing the test with what was being done.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, b.snapshot())
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor waits, at most 20 s, for a JavaScript condition to hold on the
// page; it never sleeps a fixed time.
func (b *browser) waitFor(what, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 25*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+cond+")",
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		b.t.Fatalf("waiting for %s: %v\n%s", what, err, b.snapshot())
	}
}

// snapshot describes the page, for a failure's message.
func (b *browser) snapshot() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const t = (id) => { const e = document.getElementById(id); return e ? (e.dataset.value !== undefined && e.dataset.value !== "" ? e.dataset.value : e.textContent.trim()) : "(none)"; };
		const rows = Array.from(document.querySelectorAll("#history tr")).slice(0, 5).map((r) => r.dataset.type + ": " + r.textContent.trim());
		return "page: " + location.href + "\n  available " + t("balance-available") + ", held " + t("balance-held") +
			"\n  live: " + t("live-text") + "\n  job: " + t("job-status") + "\n  buy: " + t("buy-status") + "\n  error: " + t("error") +
			"\n  history:\n    " + rows.join("\n    ");
	})()`))
	if err != nil {
		return "(no page snapshot: " + err.Error() + ")"
	}
	return s
}

// setField sets a form field as a user's choice would: its value, then
// the input and change events the page listens to.
func (b *browser) setField(id, value string) {
	b.t.Helper()
	got := eval[string](b, fmt.Sprintf(`(() => {
		const e = document.getElementById(%q);
		e.value = %q;
		e.dispatchEvent(new Event("input", {bubbles: true}));
		e.dispatchEvent(new Event("change", {bubbles: true}));
		return e.value;
	})()`, id, value))
	if got != value {
		b.t.Fatalf("#%s: set to %q, it holds %q\n%s", id, value, got, b.snapshot())
	}
}

// amount reads an element's data-value: an exact amount the page shows.
func (b *browser) amount(id string) credits.Credits {
	b.t.Helper()
	s := eval[string](b, fmt.Sprintf(`document.getElementById(%q).dataset.value`, id))
	c, err := credits.Parse(s)
	if err != nil {
		b.t.Fatalf("#%s shows %q, not an amount: %v", id, s, err)
	}
	return c
}

// shows is a condition: the element's data-value is the amount want.
func shows(id string, want credits.Credits) string {
	return fmt.Sprintf(`document.getElementById(%q).dataset.value === %q`, id, want.String())
}

func sub(t *testing.T, a, b credits.Credits) credits.Credits {
	t.Helper()
	d, err := a.Sub(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func add(t *testing.T, a, b credits.Credits) credits.Credits {
	t.Helper()
	s, err := a.Add(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDashboardEndToEnd drives the dashboard in headless Chromium against the
// demo platform, in process, on a fresh SQLite file: a quote, its
// confirmation, the held credits, a generation that fails and gives them
// back with its reason in the history, one that succeeds for less than its
// quote, a purchase clicked twice that credits once, the history's older
// page, the spending charts, the team account's members against their
// limits, another user's account refused, and a confirmation refused for
// want of credits that goes through once credits are bought and the quote
// is asked again. The page is never reloaded
// while a job runs: it follows the account's event stream. It saves
// screenshots of the dashboard (desktop and phone width, and the team's) in
// its temporary directory, or, with
//
//	CREDITS_SCREENSHOT_DIR=../../docs go test -run TestDashboard ./examples/server
//
// as docs/dashboard.png, docs/dashboard-phone.png and docs/dashboard-team.png.
//
// It needs Chromium (Debian: apt-get install chromium); without it the test
// skips, except under CI=true, where it fails.
func TestDashboardEndToEnd(t *testing.T) {
	chromium := findChromium(t)
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ts := startServer(t, ctx)
	b := newBrowser(t, ctx, chromium)
	ledger := ts.p.ledger

	// Signing in as alice lands on her dashboard, live.
	b.do("opening the dashboard", chromedp.Navigate(ts.url+"/login?user=alice"))
	b.waitFor("the balance", `document.getElementById("balance-available").dataset.value !== ""`)
	b.waitFor("the event stream to open", `document.getElementById("live-status").dataset.state === "live"`)
	start, err := ledger.Balance(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	// The stream opens after the account's seq, read before the balance, so
	// that nothing written in between is missed.
	acct, err := ledger.Account(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	ts.mu.Lock()
	firstStream := ""
	if len(ts.streams) > 0 {
		firstStream = ts.streams[0]
	}
	ts.mu.Unlock()
	if want := fmt.Sprintf("after=%d", acct.Seq); firstStream != want {
		t.Errorf("the page opened the events stream with %q; want %q", firstStream, want)
	}
	if got := b.amount("balance-available"); got != start.Available {
		t.Fatalf("the page shows %s available, the ledger %s", got, start.Available)
	}
	b.waitFor("the plan and its allowance", `document.getElementById("plan-name").textContent === "Pro" &&
		document.getElementById("plan-allowance").textContent.startsWith("500 credits / month")`)

	// 1. A 5 s 720p video whose generation fails: the quote first, then the
	// confirmation holds it, then the failure gives every credit back.
	quote, err := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	generate := func(prompt string) {
		t.Helper()
		b.setField("tool", "video")
		b.setField("resolution", "720p")
		b.setField("duration", "5")
		b.setField("prompt", "")
		b.do("filling in the generate form",
			chromedp.SendKeys(chromedp.CSS("#prompt"), prompt),
			chromedp.Click(chromedp.CSS("#get-quote")),
			chromedp.WaitVisible(chromedp.CSS("#quote-panel")),
		)
		if got := b.amount("quote-total"); got != quote.Total {
			t.Fatalf("the page quotes %s, the ledger %s", got, quote.Total)
		}
		breakdown := eval[string](b, `document.getElementById("quote-breakdown").textContent`)
		if breakdown != quote.Breakdown {
			t.Fatalf("the page's breakdown is %q, the ledger's %q", breakdown, quote.Breakdown)
		}
		if held := b.amount("balance-held"); !held.IsZero() {
			t.Fatalf("a quote alone holds %s credits", held)
		}
		b.do("confirming the quote", chromedp.Click(chromedp.CSS("#confirm")))
	}
	generate("a lighthouse in a storm, please fail")
	heldAvailable := sub(t, start.Available, quote.Total)
	b.waitFor("the hold to show (available down by the quote, held up by it)",
		shows("balance-available", heldAvailable)+" && "+shows("balance-held", quote.Total))
	b.waitFor("the job to show as running", `document.getElementById("job").dataset.status === "running"`)
	ts.settleJob(t, ctx)
	b.waitFor("the credits to come back, without a reload",
		shows("balance-available", start.Available)+" && "+shows("balance-held", credits.Credits{}))
	b.waitFor("the job to show as failed, its credits returned", `document.getElementById("job").dataset.status === "failed" &&
		document.getElementById("job-title").textContent === "Failed: credits returned" &&
		document.getElementById("job-status").textContent.includes("the prompt asked to fail (demo)")`)
	b.waitFor("the release's reason in the history", fmt.Sprintf(`Array.from(document.querySelectorAll('#history tr[data-type="release"]'))
		.some((r) => r.textContent.includes(%q))`, failPromptReason))

	// 2. The same video, generated: the output is shorter than asked, so it
	// costs less than the quote.
	generate("a lighthouse at dawn, calm sea")
	b.waitFor("the second hold to show", shows("balance-held", quote.Total))
	ts.settleJob(t, ctx)
	b.waitFor("the job to show as done", `document.getElementById("job").dataset.status === "done"`)
	b.waitFor("nothing held any more", shows("balance-held", credits.Credits{}))
	afterVideo, err := ledger.Balance(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	b.waitFor("the charge in the balance", shows("balance-available", afterVideo.Available))
	charged := sub(t, start.Available, afterVideo.Available)
	if !charged.IsPositive() || !charged.Less(quote.Total) {
		t.Fatalf("the shorter video cost %s credits; want more than 0 and less than the quote's %s", charged, quote.Total)
	}

	// 3. A purchase clicked twice credits once: both clicks send the
	// purchase ID the button was armed with, and the provider's webhook
	// comes twice for each.
	b.waitFor("the Buy button", `document.getElementById("buy").dataset.purchase !== undefined`)
	b.do("clicking Buy twice", chromedp.Click(chromedp.CSS("#buy")), chromedp.Click(chromedp.CSS("#buy")))
	deadline := time.Now().Add(20 * time.Second)
	for ts.buys.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the server answered %d purchase requests of the 2 clicks\n%s", ts.buys.Load(), b.snapshot())
		}
		time.Sleep(10 * time.Millisecond)
	}
	bought := add(t, afterVideo.Available, credits.Whole(100))
	b.waitFor("the purchase in the balance", shows("balance-available", bought))
	b.waitFor("the purchase's outcome", `document.getElementById("buy-status").textContent.includes("credited once") ||
		document.getElementById("buy-status").textContent.includes("already paid")`)
	afterBuy, err := ledger.Balance(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if afterBuy.Available != bought || afterBuy.Paid != credits.Whole(100) {
		t.Fatalf("after two clicks on Buy: available %s, paid %s; want %s and 100 (one purchase)", afterBuy.Available, afterBuy.Paid, bought)
	}
	purchases, err := ledger.History(ctx, credits.HistoryRequest{Account: "alice", Types: []credits.EntryType{credits.EntryGrant}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range purchases.Entries {
		if e.Kind == credits.KindPurchase {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d purchase grants, want 1", n)
	}

	// The history pages: opened afresh, the page shows the newest entries,
	// and "Older entries" loads the next page.
	b.do("opening the dashboard again", chromedp.Navigate(ts.url+"/"))
	b.waitFor("the balance", shows("balance-available", bought))
	b.waitFor("the Older button", `!document.getElementById("history-older").hidden`)
	rows := eval[int](b, `document.querySelectorAll("#history tr").length`)
	b.do("loading older entries", chromedp.Click(chromedp.CSS("#history-older")))
	b.waitFor("older entries", fmt.Sprintf(`document.querySelectorAll("#history tr").length > %d`, rows))
	b.waitFor("the history newest first, without gaps", `(() => {
		const seqs = Array.from(document.querySelectorAll("#history tr")).map((r) => Number(r.dataset.seq));
		return seqs.every((s, i) => i === 0 || seqs[i - 1] === s + 1);
	})()`)

	// The charts are drawn from the spending reports.
	b.waitFor("the spending charts", `document.querySelector('#chart-tool svg g[data-group="video"]') !== null &&
		document.querySelectorAll('#chart-day svg g[data-day]').length === 14`)

	// Screenshots: the dashboard with a quote waiting to be confirmed, at
	// desktop width, then at phone width.
	dir := t.TempDir()
	if d := os.Getenv("CREDITS_SCREENSHOT_DIR"); d != "" {
		dir = d
	}
	b.setField("prompt", "")
	b.do("quoting for the screenshot",
		chromedp.SendKeys(chromedp.CSS("#prompt"), "a paper boat sailing down a rainy street, cinematic"),
		chromedp.Click(chromedp.CSS("#get-quote")),
		chromedp.WaitVisible(chromedp.CSS("#quote-panel")),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`),
	)
	b.screenshot(filepath.Join(dir, "dashboard.png"), 1280, 900, 1)
	b.screenshot(filepath.Join(dir, "dashboard-phone.png"), 390, 844, 2)
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("at 390 px wide the page is %d px wide: it scrolls sideways", w)
	}

	// The team account: alice switches to it and sees each member's
	// spending against their monthly limit.
	b.setField("account-select", "studio")
	b.waitFor("the team's members", `(() => {
		const li = Array.from(document.querySelectorAll("#members li"));
		const text = (m) => (li.find((e) => e.dataset.member === m) || {textContent: ""}).textContent;
		return !document.getElementById("members-card").hidden && li.length === 2 &&
			text("alice").includes("of 800") && text("bob").includes("of 300");
	})()`)
	b.waitFor("the team's plan", `document.getElementById("plan-name").textContent === "Studio" && location.search === "?account=studio"`)
	team, err := ledger.Balance(ctx, "studio")
	if err != nil {
		t.Fatal(err)
	}
	b.waitFor("the team's balance", shows("balance-available", team.Available))
	b.screenshot(filepath.Join(dir, "dashboard-team.png"), 1280, 900, 1)

	// 4. Another user's account is not reachable: the API refuses it with a
	// problem, and the page shows the error, not data.
	type probe struct {
		Status int    `json:"status"`
		Type   string `json:"type"`
		Code   string `json:"code"`
	}
	got := eval[probe](b, `fetch("/api/accounts/bob/balance").then(async (r) =>
		({status: r.status, type: r.headers.get("Content-Type"), code: (await r.json()).code}))`, chromedp.EvalAwaitPromise)
	if got.Status != http.StatusForbidden || got.Code != "forbidden" || !strings.HasPrefix(got.Type, "application/problem+json") {
		t.Fatalf("alice reading bob's balance: %+v; want 403, a forbidden problem", got)
	}
	b.do("opening bob's account as alice", chromedp.Navigate(ts.url+"/?account=bob"))
	b.waitFor("the error", `!document.getElementById("error").hidden && document.getElementById("error").textContent.includes("403")`)
	if shown := eval[bool](b, `!document.getElementById("dashboard").hidden || document.getElementById("balance-available").dataset.value !== ""`); shown {
		t.Fatalf("bob's account shows data to alice\n%s", b.snapshot())
	}

	// 5. A refusal is not for ever. bob, who has only his signup credits,
	// confirms a quote for more than he has: it is refused, nothing is
	// held, and the page drops the quote and its idempotency key (the
	// ledger answers that key with the refusal for ever). He buys credits,
	// asks for the quote again and confirms: now it is held.
	bobStart, err := ledger.Balance(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	var big credits.Quote
	secs := 0
	for s := 1; s <= 60 && secs == 0; s++ {
		q, err := ledger.QuoteFor(ctx, "bob", credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: time.Duration(s) * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if bobStart.Available.Less(q.Total) {
			big, secs = q, s
		}
	}
	bobBought := add(t, bobStart.Available, credits.Whole(100))
	if secs == 0 || bobBought.Less(big.Total) {
		t.Fatalf("no 720p video costs more than bob's %s credits and at most %s", bobStart.Available, bobBought)
	}
	b.do("signing in as bob", chromedp.Navigate(ts.url+"/login?user=bob"))
	b.waitFor("bob's balance", shows("balance-available", bobStart.Available))
	b.waitFor("bob's event stream to open", `document.getElementById("live-status").dataset.state === "live"`)
	quoteBig := func() {
		t.Helper()
		b.setField("tool", "video")
		b.setField("resolution", "720p")
		b.setField("duration", fmt.Sprint(secs))
		b.setField("prompt", "")
		b.do("asking for a quote larger than the balance",
			chromedp.SendKeys(chromedp.CSS("#prompt"), "a long drone flight over the fjords"),
			chromedp.Click(chromedp.CSS("#get-quote")),
			chromedp.WaitVisible(chromedp.CSS("#quote-panel")),
		)
		if got := b.amount("quote-total"); got != big.Total {
			t.Fatalf("the page quotes %s, the ledger %s", got, big.Total)
		}
	}
	quoteBig()
	b.do("confirming a quote larger than the balance", chromedp.Click(chromedp.CSS("#confirm")))
	refusal := fmt.Sprintf("This costs %s, you have %s. Buy credits, then get a new quote.", big.Total, bobStart.Available)
	b.waitFor("the refusal, and the quote dropped", fmt.Sprintf(`document.getElementById("job").dataset.status === "error" &&
		!document.getElementById("job").hidden && document.getElementById("quote-panel").hidden &&
		document.getElementById("job-title").textContent === "Not enough credits" &&
		document.getElementById("job-status").textContent === %q`, refusal))
	if refused, err := ledger.Balance(ctx, "bob"); err != nil {
		t.Fatal(err)
	} else if !refused.Held.IsZero() || refused.Available != bobStart.Available {
		t.Fatalf("after the refusal bob has %s available and %s held; want %s and nothing held", refused.Available, refused.Held, bobStart.Available)
	}
	if held := b.amount("balance-held"); !held.IsZero() {
		t.Fatalf("after the refusal the page shows %s held", held)
	}
	b.do("buying credits", chromedp.Click(chromedp.CSS("#buy")))
	b.waitFor("the purchase in bob's balance", shows("balance-available", bobBought))
	quoteBig()
	b.waitFor("the refusal gone with the new quote", `document.getElementById("job").hidden`)
	b.do("confirming the new quote", chromedp.Click(chromedp.CSS("#confirm")))
	b.waitFor("bob's hold to show", shows("balance-held", big.Total)+" && "+shows("balance-available", sub(t, bobBought, big.Total))+
		` && document.getElementById("job").dataset.status === "running"`)
	if held, err := ledger.Balance(ctx, "bob"); err != nil {
		t.Fatal(err)
	} else if held.Held != big.Total {
		t.Fatalf("after buying and confirming again bob has %s held; want %s", held.Held, big.Total)
	}
	ts.settleJob(t, ctx)
	b.waitFor("bob's job to show as done", `document.getElementById("job").dataset.status === "done"`)

	// The page never sent the API a parameter or body it does not take.
	ts.mu.Lock()
	refused := ts.refused
	ts.mu.Unlock()
	if len(refused) > 0 {
		t.Errorf("the API refused the page's requests with 400: %q", refused)
	}
	t.Logf("end to end in %s; screenshots in %s", time.Since(started).Round(time.Millisecond), dir)
}

// screenshot saves a full-page PNG of the page at the given viewport.
func (b *browser) screenshot(path string, width, height int64, scale float64) {
	b.t.Helper()
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(scale)}
	if width < 600 {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	b.do("resizing the viewport", chromedp.EmulateViewport(width, height, opts...))
	// Let the page lay itself out (and redraw its charts) at the new width.
	b.waitFor("the layout at the new width", fmt.Sprintf(`document.documentElement.clientWidth === %d`, width))
	b.do("redrawing the charts", chromedp.Evaluate[chromedp.Void](`window.dispatchEvent(new Event("resize"))`))
	b.waitFor("the charts at the new width", fmt.Sprintf(`(() => {
		const s = document.querySelector("#chart-day svg");
		return s && Math.abs(Number(s.getAttribute("width")) - document.getElementById("chart-day").clientWidth) < 2;
	})()`))
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
