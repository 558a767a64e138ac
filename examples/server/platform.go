package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/credithttp"
)

// static holds the dashboard: plain HTML, CSS and JavaScript, no build
// step, nothing fetched from elsewhere (it works offline).
//
//go:embed static
var static embed.FS

// The demo's users and teams. A real platform keeps them in its own
// database; here alice and bob each have a personal account named after
// them, and both are members of the team account "studio".
var (
	demoUsers = []string{"alice", "bob"}
	demoTeams = []demoTeam{{ID: "studio", Name: "Studio team", Members: []string{"alice", "bob"}}}
)

// demoTeam is a team account and who belongs to it.
type demoTeam struct {
	ID      string
	Name    string
	Members []string
}

// access reports whether user may act on account: their own personal
// account (its ID is the user's name), or a team they are a member of, as
// that member.
func access(user, account string) (member string, ok bool) {
	if user == "" || account == "" {
		return "", false
	}
	if account == user {
		return "", true
	}
	for _, t := range demoTeams {
		if t.ID == account && slices.Contains(t.Members, user) {
			return user, true
		}
	}
	return "", false
}

// options are the platform's tunables; the end-to-end test shortens them.
type options struct {
	// EventsPoll is how often an open event stream looks for new entries.
	EventsPoll time.Duration
	// Worker configures the fake generation worker.
	Worker workerConfig
}

// defaultOptions are the settings of `go run ./examples/server`.
func defaultOptions() options {
	return options{
		EventsPoll: 500 * time.Millisecond,
		Worker: workerConfig{
			MinDelay: time.Second,
			MaxDelay: 3 * time.Second,
			FailRate: 0.2,
			Poll:     200 * time.Millisecond,
		},
	}
}

// platform is the demo application: the ledger, its HTTP API, the worker
// and the application's own pages and endpoints.
type platform struct {
	ledger *credits.Ledger
	api    *credithttp.Handler
	worker *worker
	// webhookSecret signs the simulated payment provider's webhooks. In
	// production it is the provider's secret, from a secret store.
	webhookSecret []byte
}

// newPlatform opens a ledger on store, creates the demo accounts when they
// are missing and builds the platform.
func newPlatform(ctx context.Context, store credits.Store, opt options) (*platform, error) {
	// The key that seals the quotes the browser sends back on confirming.
	// Every server of a platform shares one, from its secret store; this
	// demo makes one per run (a quote shown before a restart is refused
	// after it, and the page asks for a new one).
	quoteKey := make([]byte, 32)
	webhookSecret := make([]byte, 32)
	rand.Read(quoteKey)
	rand.Read(webhookSecret)
	ledger, err := credits.NewLedger(store, &credits.Config{
		Signup:   credits.Reward{Amount: credits.Whole(50), ValidFor: 30 * 24 * time.Hour},
		QuoteKey: quoteKey,
		// A job whose worker died is given back after five minutes.
		HoldTTL:             5 * time.Minute,
		LowBalanceThreshold: credits.Whole(25),
	})
	if err != nil {
		return nil, err
	}
	if err := setupDemo(ctx, ledger); err != nil {
		return nil, fmt.Errorf("demo accounts: %w", err)
	}
	api, err := credithttp.New(credithttp.Config{
		Ledger:     ledger,
		Authorize:  authorize,
		EventsPoll: opt.EventsPoll,
	})
	if err != nil {
		return nil, err
	}
	return &platform{
		ledger:        ledger,
		api:           api,
		worker:        newWorker(ledger, withSettled(opt.Worker, api.Notify)),
		webhookSecret: webhookSecret,
	}, nil
}

// authorize is the platform's credithttp.Authorizer: the user from the
// session cookie may act on their own account and on their teams (as
// themselves), and never settle holds nor call the admin endpoints: the
// worker settles, through the ledger.
func authorize(r *http.Request) (credithttp.Principal, error) {
	user := sessionUser(r)
	if user == "" {
		return credithttp.Principal{}, credithttp.ErrUnauthenticated
	}
	account := r.PathValue("account")
	if account == "" { // an endpoint of no account, such as /catalog
		return credithttp.Principal{}, nil
	}
	member, ok := access(user, account)
	if !ok {
		return credithttp.Principal{}, credithttp.ErrForbidden
	}
	return credithttp.Principal{Account: account, Member: member}, nil
}

// sessionCookie names the cookie that says who is signed in. This is a
// demo: the cookie is the user's name, unsigned. A real platform uses its
// own sessions.
const sessionCookie = "user"

// sessionUser returns the signed-in user, or "" for nobody.
func sessionUser(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil || !slices.Contains(demoUsers, c.Value) {
		return ""
	}
	return c.Value
}

// Handler returns the platform's routes.
func (p *platform) Handler() http.Handler {
	staticFS, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has it
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", http.StripPrefix("/api", p.api))
	mux.HandleFunc("GET /{$}", p.index)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS)))
	mux.HandleFunc("GET /login", p.login)
	mux.HandleFunc("POST /logout", p.logout)
	mux.HandleFunc("GET /app/me", p.me)
	mux.HandleFunc("POST /app/buy", p.buy)
	mux.HandleFunc("POST /webhooks/payment", p.paymentWebhook)
	return securityHeaders(mux)
}

// securityHeaders sets headers every response gets. The policy allows
// nothing from another origin: the dashboard works offline.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

// index serves the dashboard, or sends a visitor who is not signed in to
// sign in as alice.
func (p *platform) index(w http.ResponseWriter, r *http.Request) {
	if sessionUser(r) == "" {
		http.Redirect(w, r, "/login?user=alice", http.StatusSeeOther)
		return
	}
	page, err := static.ReadFile("static/index.html")
	if err != nil {
		http.Error(w, "the dashboard is missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(page)
}

// loginPage lists the demo users when /login names none of them.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Lumen demo</title><link rel="stylesheet" href="/static/app.css"></head>
<body class="login"><main class="card login-card"><h1>Sign in</h1>
<p>This demo has two users. Pick one:</p>
<ul>{{range .}}<li><a class="button" href="/login?user={{.}}">{{.}}</a></li>{{end}}</ul></main></body></html>
`))

// login signs in as the user ?user= names (one of the demo users) and goes
// to the dashboard.
func (p *platform) login(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if !slices.Contains(demoUsers, user) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if user != "" {
			w.WriteHeader(http.StatusBadRequest)
		}
		_ = loginPage.Execute(w, demoUsers)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: user, Path: "/",
		MaxAge: int((30 * 24 * time.Hour).Seconds()), HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout forgets the session. Like every POST of the platform's it needs
// Content-Type: application/json (its body may be empty), so that another
// site's page cannot sign a user out with a form; the page calls it with
// fetch, then goes to /login itself.
func (p *platform) logout(w http.ResponseWriter, r *http.Request) {
	if !requireJSON(w, r) {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// accountInfo is an account the signed-in user may switch to.
type accountInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Team bool   `json:"team,omitempty"`
}

// me tells the page who is signed in, which accounts they may use, the
// catalog's plans and the credit packs on sale.
func (p *platform) me(w http.ResponseWriter, r *http.Request) {
	user := sessionUser(r)
	if user == "" {
		writeProblem(w, http.StatusUnauthorized, "unauthenticated", "sign in first: GET /login?user=alice")
		return
	}
	accounts := []accountInfo{{ID: user, Name: "Personal"}}
	for _, t := range demoTeams {
		if slices.Contains(t.Members, user) {
			accounts = append(accounts, accountInfo{ID: t.ID, Name: t.Name, Team: true})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user":     user,
		"users":    demoUsers,
		"accounts": accounts,
		"plans":    p.ledger.Catalog().Config().Plans,
		"packs":    creditPacks,
	})
}

// writeJSON writes v as the JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// problem is an RFC 9457 problem document, in the shape of credithttp's,
// so that the page reads every error the same way.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
	// Field names the refused field, header or parameter, as credithttp's
	// problems do.
	Field string `json:"field,omitempty"`
}

// writeProblem writes a problem document of code. Its detail speaks to the
// client: it never carries a server-side cause (log that instead).
func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	writeProblemDoc(w, problem{Status: status, Code: code, Detail: detail})
}

// writeProblemDoc writes p, filling in its type and title from its code.
func writeProblemDoc(w http.ResponseWriter, p problem) {
	p.Type = "https://creditkit.dev/problems/" + p.Code
	p.Title = codeTitle(p.Code)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// codeTitle is a code in words, as credithttp titles its problems:
// "insufficient_credits" → "Insufficient credits".
func codeTitle(code string) string {
	if code == "" {
		return ""
	}
	s := strings.ReplaceAll(code, "_", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// requireJSON refuses, with a 415 problem, a request whose Content-Type is
// not application/json (or another +json type), as credithttp does, and
// reports whether the request may go on. Every POST of the platform's own
// needs it, even with an empty body: a browser sends that header across
// origins only after a CORS preflight (which this server never allows), so
// another site's form or no-cors fetch cannot buy credits or sign out with
// the user's cookie.
func requireJSON(w http.ResponseWriter, r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return true
	}
	writeProblemDoc(w, problem{
		Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Field: "Content-Type",
		Detail: fmt.Sprintf("Content-Type %q is not application/json (required, even with an empty body)", ct),
	})
	return false
}

// decodeJSON decodes r's body, at most 64 KiB of one JSON object with no
// unknown field, into v; it writes the problem and returns false when the
// request is refused (its Content-Type is not JSON, or its body is not such
// an object). what describes the body expected, for the refusal.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, what string) bool {
	if !requireJSON(w, r) {
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &mbe):
		writeProblem(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is larger than %d bytes", mbe.Limit))
	default:
		// A decoding error describes the client's own body: no
		// server-side cause to hide.
		writeProblem(w, http.StatusBadRequest, "invalid_request", "the body must be "+what+": "+err.Error())
	}
	return false
}

// withSettled returns cfg with notify as its Settled callback: a job's
// outcome wakes the account's event streams at once.
func withSettled(cfg workerConfig, notify func(account string)) workerConfig {
	cfg.Settled = notify
	return cfg
}
