package credithttp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/credithttp"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/sqlstore"
)

func TestNewRequiresLedgerAndAuthorizer(t *testing.T) {
	ledger, err := credits.NewLedger(memstore.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := credithttp.New(credithttp.Config{Authorize: authorize}); err == nil {
		t.Error("New without a ledger")
	}
	if _, err := credithttp.New(credithttp.Config{Ledger: ledger}); err == nil {
		t.Error("New without an authorizer")
	}
}

// The handler's own refusals are problem documents too, and write nothing.
func TestTransportRefusals(t *testing.T) {
	f := newFixture(t, nil)
	before := f.snapshot("alice")
	tests := []struct {
		name   string
		req    request
		status int
		code   string
		field  string
	}{
		{"unknown path", request{method: "GET", path: "/nope", user: "alice"}, 404, "not_found", ""},
		{"unknown account path", request{method: "GET", path: "/accounts/alice/nope", user: "alice"}, 404, "not_found", ""},
		{"wrong method", request{method: "DELETE", path: "/accounts/alice/balance", user: "alice"}, 405, "method_not_allowed", ""},
		{"GET on a POST", request{method: "GET", path: "/accounts/alice/reserve", user: "alice"}, 405, "method_not_allowed", ""},
		{"anonymous", request{method: "GET", path: "/accounts/alice/balance"}, 401, "unauthenticated", ""},
		{"body too large", request{method: "POST", path: "/accounts/alice/quote", user: "alice", body: `{"tool":"` + strings.Repeat("x", 70<<10) + `"}`}, 413, "body_too_large", ""},
		{"form body", request{method: "POST", path: "/accounts/alice/quote", user: "alice", body: "tool=video", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, "unsupported_media_type", "Content-Type"},
		{"text body", request{method: "POST", path: "/accounts/alice/quote", user: "alice", body: `{"tool":"video"}`, header: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type", "Content-Type"},
		{"two keys", request{method: "POST", path: "/accounts/alice/charge", user: "alice", body: `{"quote":"x"}`, header: map[string]string{"Idempotency-Key": "a"}}, 400, "invalid_request", "Idempotency-Key"},
		{"other Last-Event-ID", request{method: "GET", path: "/accounts/alice/events", user: "alice", header: map[string]string{"Last-Event-ID": "bob#3"}}, 400, "invalid_request", "Last-Event-ID"},
	}
	for _, tt := range tests {
		r := tt.req
		if tt.name == "two keys" {
			rep := f.doRaw(t, r, "Idempotency-Key", "a", "b")
			p := rep.problem(t)
			if rep.status != tt.status || p.Code != tt.code || p.Field != tt.field {
				t.Errorf("%s: %d %s", tt.name, rep.status, rep.body)
			}
			continue
		}
		rep := f.do(r)
		p := rep.problem(t)
		if rep.status != tt.status || p.Code != tt.code || p.Field != tt.field {
			t.Errorf("%s: %d %s", tt.name, rep.status, rep.body)
		}
		if tt.status == 405 && rep.header.Get("Allow") == "" {
			t.Errorf("%s: no Allow header", tt.name)
		}
	}
	if f.snapshot("alice") != before {
		t.Error("a refused request wrote")
	}
}

// doRaw sends r with header name set to several values.
func (f *fixture) doRaw(t *testing.T, r request, name string, values ...string) reply {
	req, err := http.NewRequest(r.method, f.srv.URL+"/api"+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-User", r.user)
	req.Header.Set("Content-Type", "application/json")
	for _, v := range values {
		req.Header.Add(name, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	return reply{status: resp.StatusCode, header: resp.Header, body: []byte(b.String())}
}

// The problems a client acts on carry the figures it needs.
func TestProblemDetails(t *testing.T) {
	f := newFixture(t, nil)
	big := f.quoteOf("alice", "alice", `{"tool":"video","resolution":"720p","duration_ms":60000}`) // 480 credits; alice has 120
	rep := f.do(request{method: "POST", path: "/accounts/alice/reserve", user: "alice", key: "j1", body: `{"quote":"` + big + `"}`})
	p := rep.problem(t)
	if rep.status != 402 || p.Code != "insufficient_credits" || p.Available.String() != "120" || p.Required.String() != "480" || p.Missing.String() != "360" {
		t.Errorf("insufficient: %d %s", rep.status, rep.body)
	}
	// The refusal is recorded for its key: sent again it is replayed, and says so.
	again := f.do(request{method: "POST", path: "/accounts/alice/reserve", user: "alice", key: "j1", body: `{"quote":"` + big + `"}`})
	if p := again.problem(t); again.status != 402 || again.header.Get("Idempotent-Replayed") != "true" || p.DecidedAt == nil {
		t.Errorf("replayed refusal: %d %v %s", again.status, again.header, again.body)
	}

	// A member over their limit learns what remains.
	ctx := context.Background()
	if _, err := f.ledger.SetMemberLimits(ctx, credits.MemberLimitsRequest{Account: "team", Period: credits.PeriodDay, Members: map[string]credits.Credits{"bob": credits.Whole(50)}, Key: "l1"}); err != nil {
		t.Fatal(err)
	}
	q := f.quote("team", "bob")
	if rep := f.do(request{method: "POST", path: "/accounts/team/reserve", user: "bob", key: "b1", body: `{"quote":"` + q + `"}`}); rep.status != 201 {
		t.Fatalf("bob's first reserve: %d %s", rep.status, rep.body)
	}
	rep = f.do(request{method: "POST", path: "/accounts/team/reserve", user: "bob", key: "b2", body: `{"quote":"` + q + `"}`})
	if p := rep.problem(t); rep.status != 403 || p.Code != "member_limit" || p.Remaining.String() != "10" {
		t.Errorf("member limit: %d %s", rep.status, rep.body)
	}

	// A conflict names the fields that differ.
	rep = f.do(request{method: "POST", path: "/accounts/alice/grants", user: "alice", role: "admin", key: "g1", body: `{"amount":"1","kind":"promo"}`})
	if rep.status != 201 {
		t.Fatalf("grant: %d %s", rep.status, rep.body)
	}
	rep = f.do(request{method: "POST", path: "/accounts/alice/grants", user: "alice", role: "admin", key: "g1", body: `{"amount":"2","kind":"promo"}`})
	if p := rep.problem(t); rep.status != 409 || len(p.Fields) != 1 || p.Fields[0] != "amount" {
		t.Errorf("conflict: %d %s", rep.status, rep.body)
	}
}

// A team's spending is attributed to the member the authorizer names;
// only an admin may name another.
func TestMemberAttribution(t *testing.T) {
	f := newFixture(t, nil)
	q := f.quote("team", "bob")
	rep := f.do(request{method: "POST", path: "/accounts/team/reserve", user: "bob", key: "b1", body: `{"quote":"` + q + `"}`})
	var res credits.ReserveResult
	if err := json.Unmarshal(rep.body, &res); err != nil || rep.status != 201 || res.Hold.Member != "bob" {
		t.Fatalf("bob's reserve: %d %s", rep.status, rep.body)
	}
	rep = f.do(request{method: "POST", path: "/accounts/team/reserve", user: "alice", role: "admin", key: "b2", body: `{"quote":"` + q + `","member":"bob"}`})
	if err := json.Unmarshal(rep.body, &res); err != nil || rep.status != 201 || res.Hold.Member != "bob" {
		t.Fatalf("an admin's reserve for bob: %d %s", rep.status, rep.body)
	}
	rep = f.do(request{method: "GET", path: "/accounts/team/spending?by=member", user: "alice"})
	if rep.status != 200 {
		t.Fatalf("spending: %d %s", rep.status, rep.body)
	}
}

// The events stream sends every entry once, in order, from now or from
// Last-Event-ID, and only the account's own.
func TestEvents(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	open := func(lastID string) (*bufio.Reader, func()) {
		req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/api/accounts/alice/events", nil)
		req.Header.Set("X-User", "alice")
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return bufio.NewReader(resp.Body), func() { resp.Body.Close() }
	}
	type event struct{ id, typ, data string }
	next := func(r *bufio.Reader) event {
		var e event
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && e.id != "":
				return e
			case strings.HasPrefix(line, "id: "):
				e.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.data = line[6:]
			}
		}
	}
	stream, stop := open("")
	a, _ := f.ledger.Account(ctx, "alice")
	for i := range 3 {
		if _, err := f.ledger.Grant(ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(1), Kind: credits.KindPromo, Key: fmt.Sprint("e", i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.ledger.Grant(ctx, credits.GrantRequest{Account: "bob", Amount: credits.Whole(1), Kind: credits.KindPromo, Key: fmt.Sprint("e", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		e := next(stream)
		var entry credits.Entry
		if err := json.Unmarshal([]byte(e.data), &entry); err != nil {
			t.Fatal(err)
		}
		want := credits.EventID("alice", a.Seq+int64(i)+1)
		if e.id != want || e.typ != "grant" || entry.Account != "alice" || entry.Seq != a.Seq+int64(i)+1 {
			t.Fatalf("event %d: %+v, want id %s", i, e, want)
		}
	}
	stop()
	// Reconnecting after the first of them delivers the other two.
	stream, stop = open(credits.EventID("alice", a.Seq+1))
	defer stop()
	for i := 2; i <= 3; i++ {
		if e := next(stream); e.id != credits.EventID("alice", a.Seq+int64(i)) {
			t.Fatalf("after reconnecting: %+v", e)
		}
	}
	// Bob's stream is not alice's to read.
	if rep := f.do(request{method: "GET", path: "/accounts/bob/events", user: "alice"}); rep.status != 403 {
		t.Errorf("bob's events as alice: %d %s", rep.status, rep.body)
	}
}

// Many clients reserving on one account at once over HTTP: exactly as many
// holds as the balance pays for, every other request refused with 402, on
// every store (PostgreSQL included).
func TestConcurrentReserves(t *testing.T) {
	stores := map[string]func(t *testing.T) credits.Store{
		"memstore": func(t *testing.T) credits.Store { return memstore.New() },
		"SQLiteFile": func(t *testing.T) credits.Store {
			s, err := sqlstore.Open(context.Background(), "file:"+filepath.Join(t.TempDir(), "c.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"Postgres": newPostgres,
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open(t))
			q := f.quote("alice", "alice") // 40 credits of alice's 120
			const clients = 24
			var wg sync.WaitGroup
			statuses := make(chan int, clients)
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rep := f.do(request{method: "POST", path: "/accounts/alice/reserve", user: "alice", key: fmt.Sprint("job-", i), body: `{"quote":"` + q + `"}`})
					if rep.status != 201 && rep.problem(t).Code != "insufficient_credits" {
						t.Errorf("reserve %d: %d %s", i, rep.status, rep.body)
					}
					statuses <- rep.status
				}()
			}
			wg.Wait()
			close(statuses)
			held := 0
			for s := range statuses {
				if s == 201 {
					held++
				}
			}
			b, err := f.ledger.Balance(context.Background(), "alice")
			if err != nil {
				t.Fatal(err)
			}
			if held != 3 || b.Held.String() != "120" || !b.Available.IsZero() {
				t.Errorf("%d holds, balance %+v: want 3 holds of 40", held, b)
			}
		})
	}
}

// The catalog is the page's list of tools, for any signed-in caller.
func TestCatalog(t *testing.T) {
	f := newFixture(t, nil)
	rep := f.do(request{method: "GET", path: "/catalog", user: "carol"})
	var cat struct {
		Version string         `json:"version"`
		Tools   []credits.Tool `json:"tools"`
	}
	if err := json.Unmarshal(rep.body, &cat); err != nil || rep.status != 200 || cat.Version == "" || len(cat.Tools) == 0 {
		t.Fatalf("catalog: %d %s", rep.status, rep.body)
	}
	if _, ok := f.ledger.Catalog().Tool(cat.Tools[0].ID); !ok {
		t.Errorf("tool %q is not the ledger's", cat.Tools[0].ID)
	}
	if rep := f.do(request{method: "GET", path: "/catalog"}); rep.status != 401 {
		t.Errorf("anonymous catalog: %d", rep.status)
	}
	if rep := f.do(request{method: "GET", path: "/catalog?plan=pro", user: "alice"}); rep.status != 400 || rep.problem(t).Field != "plan" {
		t.Errorf("catalog with a parameter: %d %s", rep.status, rep.body)
	}
	if rep := f.do(request{method: "POST", path: "/catalog", user: "alice", body: "{}"}); rep.status != 405 {
		t.Errorf("POST catalog: %d", rep.status)
	}
}
