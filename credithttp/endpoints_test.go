package credithttp_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// bad is a refused request: its body (or query, or key), and the field
// the problem must name.
type bad struct {
	name  string
	body  string
	query string
	key   string // "" sends the case's key; "-" sends none
	path  string // overrides the case's path
	user  string // overrides the case's user
	field string
	code  string
}

// endpointCase is one endpoint: a request that succeeds, the requests it
// refuses, and (for keyed endpoints) a different body for the same key.
type endpointCase struct {
	name         string
	method, path string // {hold}, {charge}, {grant} are filled by prepare
	user, role   string // default: alice, no role
	body         string
	status       int
	keyed        bool   // the endpoint takes an Idempotency-Key (sent as "k1")
	other        string // a different body for the same key: refused 409
	otherPath    string // or a different path for it
	needsRole    bool   // refused without role
	prepare      func(f *fixture) map[string]string
	bad          []bad
}

func holdVars(f *fixture) map[string]string {
	return map[string]string{"hold": f.reserve("job-1")}
}

func chargeVars(f *fixture) map[string]string {
	h := f.reserve("job-1")
	f.capture(h)
	return map[string]string{"charge": h}
}

func grantVars(f *fixture) map[string]string { return map[string]string{"grant": f.grantID()} }

const longKey = "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"

var endpointCases = []endpointCase{
	{
		name: "quote", method: "POST", path: "/accounts/alice/quote", status: 200,
		body: `{"tool":"video","resolution":"720p","duration_ms":5000}`,
		bad: []bad{
			{name: "unknown tool", body: `{"tool":"nope"}`, field: "tool", code: "unknown_tool"},
			{name: "unknown resolution", body: `{"tool":"video","resolution":"9000p","duration_ms":5000}`, field: "resolution", code: "unknown_resolution"},
			{name: "negative duration", body: `{"tool":"video","resolution":"720p","duration_ms":-5}`, field: "duration_ms", code: "invalid_request"},
			{name: "duration as string", body: `{"tool":"video","resolution":"720p","duration_ms":"5000"}`, field: "duration_ms", code: "invalid_request"},
			{name: "huge duration", body: `{"tool":"video","resolution":"720p","duration_ms":9223372036854775807}`, field: "duration_ms", code: "invalid_request"},
			{name: "unknown field", body: `{"tool":"video","plan":"pro"}`, field: "plan", code: "invalid_request"},
			{name: "not an object", body: `[1]`, field: "body", code: "invalid_request"},
			{name: "two values", body: `{"tool":"video"} {}`, field: "body", code: "invalid_request"},
			{name: "broken JSON", body: `{"tool":`, field: "body", code: "invalid_request"},
		},
	},
	{
		name: "reserve", method: "POST", path: "/accounts/alice/reserve", status: 201, keyed: true,
		body:  `{"quote":"{quote}","ttl_ms":60000,"metadata":{"prompt":"a cat"}}`,
		other: `{"quote":"{quote}","ttl_ms":60000,"metadata":{"prompt":"a dog"}}`,
		bad: []bad{
			{name: "no key", body: `{"quote":"{quote}"}`, key: "-", field: "Idempotency-Key", code: "invalid_request"},
			{name: "long key", body: `{"quote":"{quote}"}`, key: longKey, field: "Idempotency-Key", code: "invalid_request"},
			{name: "no quote", body: `{}`, field: "quote", code: "invalid_request"},
			{name: "forged quote", body: `{"quote":"q1.eyJ0b29sIjoidmlkZW8ifQ.AAAA"}`, field: "quote", code: "invalid_quote"},
			{name: "negative ttl", body: `{"quote":"{quote}","ttl_ms":-1}`, field: "ttl_ms", code: "invalid_request"},
			{name: "bad metadata", body: `{"quote":"{quote}","metadata":{"":"x"}}`, field: "metadata", code: "invalid_request"},
			{name: "metadata not strings", body: `{"quote":"{quote}","metadata":{"n":1}}`, field: "metadata", code: "invalid_request"},
			{name: "another member", body: `{"quote":"{quote}","member":"bob"}`, field: "member", code: "forbidden"},
			{name: "account in body", body: `{"quote":"{quote}","account":"bob"}`, field: "account", code: "invalid_request"},
			{name: "too expensive", body: `{"quote":"{bigquote}"}`, code: "insufficient_credits"},
		},
	},
	{
		name: "charge", method: "POST", path: "/accounts/alice/charge", status: 201, keyed: true,
		body:  `{"quote":"{quote}"}`,
		other: `{"quote":"{quote}","metadata":{"tool":"again"}}`,
		bad: []bad{
			{name: "no key", body: `{"quote":"{quote}"}`, key: "-", field: "Idempotency-Key", code: "invalid_request"},
			{name: "no quote", body: `{"metadata":{}}`, field: "quote", code: "invalid_request"},
			{name: "another account's quote", body: `{"quote":"q1.x.y"}`, field: "quote", code: "invalid_quote"},
			{name: "unknown field", body: `{"quote":"{quote}","amount":"1"}`, field: "amount", code: "invalid_request"},
		},
	},
	{
		name: "hold", method: "GET", path: "/accounts/alice/holds/{hold}", status: 200, prepare: holdVars,
		bad: []bad{
			{name: "unknown hold", path: "/accounts/alice/holds/h_nope", field: "hold", code: "unknown_hold"},
			{name: "bob's hold on alice's path", path: "/accounts/bob/holds/{hold}", user: "bob", field: "hold", code: "unknown_hold"},
			{name: "query", query: "x=1", field: "x", code: "invalid_request"},
		},
	},
	{
		name: "hold by job", method: "GET", path: "/accounts/alice/jobs/job-1", status: 200, prepare: holdVars,
		bad: []bad{
			{name: "unknown job", path: "/accounts/alice/jobs/job-2", field: "job", code: "unknown_hold"},
		},
	},
	{
		name: "capture", method: "POST", path: "/accounts/alice/holds/{hold}/capture", role: "settle", needsRole: true, status: 200, keyed: true, prepare: holdVars,
		body:  `{"usage":{"duration_ms":4000}}`,
		other: `{"usage":{"duration_ms":3000}}`,
		bad: []bad{
			{name: "bad amount", body: `{"amount":"abc"}`, field: "amount", code: "invalid_amount"},
			{name: "amount over the hold", body: `{"amount":"1000"}`, field: "amount", code: "exceeds_hold"},
			{name: "bad usage", body: `{"usage":{"duration_ms":"x"}}`, field: "usage.duration_ms", code: "invalid_request"},
			{name: "negative usage", body: `{"usage":{"duration_ms":-1}}`, field: "usage", code: "invalid_request"},
			{name: "unknown hold", path: "/accounts/alice/holds/h_nope/capture", field: "hold", code: "unknown_hold"},
		},
	},
	{
		name: "capture by job", method: "POST", path: "/accounts/alice/jobs/job-1/capture", role: "settle", needsRole: true, status: 200, keyed: true, prepare: holdVars,
		body:  `{}`,
		other: `{"amount":"1"}`,
		bad: []bad{
			{name: "unknown job", path: "/accounts/alice/jobs/job-9/capture", field: "job", code: "unknown_hold"},
		},
	},
	{
		name: "release", method: "POST", path: "/accounts/alice/holds/{hold}/release", role: "settle", needsRole: true, status: 200, keyed: true, prepare: holdVars,
		body:      `{"reason":"cancelled"}`,
		otherPath: "/accounts/alice/holds/{hold2}/release",
		bad: []bad{
			{name: "unknown hold", path: "/accounts/alice/holds/h_nope/release", field: "hold", code: "unknown_hold"},
			{name: "reason not a string", body: `{"reason":5}`, field: "reason", code: "invalid_request"},
		},
	},
	{
		name: "release by job", method: "POST", path: "/accounts/alice/jobs/job-1/release", role: "settle", needsRole: true, status: 200, prepare: holdVars,
		body: `{"reason":"cancelled"}`,
		bad:  []bad{{name: "unknown job", path: "/accounts/alice/jobs/nope/release", field: "job", code: "unknown_hold"}},
	},
	{
		name: "account", method: "GET", path: "/accounts/alice", status: 200,
		bad: []bad{{name: "query", query: "full=1", field: "full", code: "invalid_request"}},
	},
	{
		name: "balance", method: "GET", path: "/accounts/alice/balance", status: 200,
		bad: []bad{
			{name: "query", query: "as_of=now", field: "as_of", code: "invalid_request"},
			{name: "unknown account", path: "/accounts/carol/balance", user: "carol", code: "unknown_account"},
		},
	},
	{
		name: "grants", method: "GET", path: "/accounts/alice/grants", status: 200,
		bad: []bad{
			{name: "limit", query: "limit=ten", field: "limit", code: "invalid_request"},
			{name: "limit too large", query: "limit=5000", field: "limit", code: "invalid_request"},
			{name: "all", query: "all=maybe", field: "all", code: "invalid_request"},
			{name: "bad cursor", query: "after=%00", field: "after", code: "invalid_request"},
		},
	},
	{
		name: "history", method: "GET", path: "/accounts/alice/history", status: 200,
		bad: []bad{
			{name: "before", query: "before=-1", field: "before", code: "invalid_request"},
			{name: "both cursors", query: "before=3&after=1", field: "after", code: "invalid_request"},
			{name: "type", query: "type=bogus", field: "type", code: "invalid_request"},
			{name: "since", query: "since=yesterday", field: "since", code: "invalid_request"},
			{name: "limit twice", query: "limit=1&limit=2", field: "limit", code: "invalid_request"},
		},
	},
	{
		name: "activity", method: "GET", path: "/accounts/alice/activity", status: 200,
		bad: []bad{
			{name: "limit", query: "limit=-3", field: "limit", code: "invalid_request"},
			{name: "until", query: "until=2026-13-01", field: "until", code: "invalid_request"},
		},
	},
	{
		name: "spending", method: "GET", path: "/accounts/alice/spending?by=day", status: 200,
		bad: []bad{
			{name: "by", path: "/accounts/alice/spending", query: "by=week", field: "by", code: "invalid_request"},
			{name: "unknown parameter", path: "/accounts/alice/spending", query: "group=tool", field: "group", code: "invalid_request"},
		},
	},
	{
		name: "grant", method: "POST", path: "/accounts/alice/grants", role: "admin", needsRole: true, status: 201, keyed: true,
		body:  `{"amount":"10","kind":"promo","note":"sorry"}`,
		other: `{"amount":"11","kind":"promo","note":"sorry"}`,
		bad: []bad{
			{name: "no key", body: `{"amount":"10","kind":"promo"}`, key: "-", field: "Idempotency-Key", code: "invalid_request"},
			{name: "negative", body: `{"amount":"-1","kind":"promo"}`, field: "amount", code: "invalid_amount"},
			{name: "four decimals", body: `{"amount":"1.2345","kind":"promo"}`, field: "amount", code: "invalid_amount"},
			{name: "no amount", body: `{"kind":"promo"}`, field: "amount", code: "invalid_amount"},
			{name: "kind", body: `{"amount":"10","kind":"gift"}`, field: "kind", code: "invalid_request"},
			{name: "expired", body: `{"amount":"10","kind":"promo","expires_at":"2020-01-01T00:00:00Z"}`, field: "expires_at", code: "invalid_request"},
			{name: "bad time", body: `{"amount":"10","kind":"promo","expires_at":"soon"}`, field: "expires_at", code: "invalid_request"},
		},
	},
	{
		name: "debit", method: "POST", path: "/accounts/alice/debits", role: "admin", needsRole: true, status: 200, keyed: true,
		body:  `{"amount":"5","kinds":["purchase"],"reason":"chargeback"}`,
		other: `{"amount":"6","kinds":["purchase"],"reason":"chargeback"}`,
		bad: []bad{
			{name: "no reason", body: `{"amount":"5"}`, field: "reason", code: "invalid_request"},
			{name: "zero", body: `{"amount":"0","reason":"x"}`, field: "amount", code: "invalid_amount"},
			{name: "kinds", body: `{"amount":"5","kinds":["gift"],"reason":"x"}`, field: "kinds", code: "invalid_request"},
			{name: "more than purchased", body: `{"amount":"21","kinds":["purchase"],"reason":"x"}`, code: "insufficient_credits"},
		},
	},
	{
		name: "void", method: "POST", path: "/accounts/alice/grants/{grant}/void", role: "admin", needsRole: true, status: 200, keyed: true, prepare: grantVars,
		body:      `{"reason":"fraud"}`,
		otherPath: "/accounts/alice/grants/{grant2}/void",
		bad: []bad{
			{name: "no reason", body: `{}`, field: "reason", code: "invalid_request"},
			{name: "unknown grant", path: "/accounts/alice/grants/b_nope/void", body: `{"reason":"x"}`, field: "grant", code: "unknown_grant"},
		},
	},
	{
		name: "refund", method: "POST", path: "/accounts/alice/charges/{charge}/refund", role: "admin", needsRole: true, status: 200, keyed: true, prepare: chargeVars,
		body:  `{"amount":"5","reason":"bad output"}`,
		other: `{"amount":"6","reason":"bad output"}`,
		bad: []bad{
			{name: "bad amount", body: `{"amount":"abc"}`, field: "amount", code: "invalid_amount"},
			{name: "more than charged", body: `{"amount":"1000"}`, field: "amount", code: "refund_exceeds_charge"},
			{name: "unknown charge", path: "/accounts/alice/charges/h_nope/refund", field: "charge", code: "unknown_hold"},
			{name: "no key", key: "-", body: `{}`, field: "Idempotency-Key", code: "invalid_request"},
		},
	},
	{
		name: "member limits", method: "PUT", path: "/accounts/team/member-limits", role: "admin", needsRole: true, status: 200, keyed: true,
		body:  `{"period":"day","default":"50","members":{"bob":"10"}}`,
		other: `{"period":"day","default":"50","members":{"bob":"11"}}`,
		bad: []bad{
			{name: "period", body: `{"period":"hour","default":"5"}`, field: "period", code: "invalid_request"},
			{name: "not a member", body: `{"period":"day","members":{"carol":"5"}}`, field: "members", code: "not_member"},
			{name: "bad default", body: `{"period":"day","default":"x"}`, field: "default", code: "invalid_amount"},
			{name: "bad member limit", body: `{"period":"day","members":{"bob":"-2"}}`, field: "members.bob", code: "invalid_amount"},
		},
	},
}

// TestEndpoints runs every endpoint through success, bad input (a problem
// naming the field, nothing written), a forbidden account, a missing
// permission, and for keyed endpoints a replay with the same body and a
// conflict with a different one.
func TestEndpoints(t *testing.T) {
	for _, tc := range endpointCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			vars := map[string]string{}
			if tc.prepare != nil {
				vars = tc.prepare(f)
			}
			account := strings.Split(tc.path, "/")[2]
			user := tc.user
			if user == "" {
				user = "alice"
			}
			fill := func(s string) string {
				if strings.Contains(s, "{quote}") {
					s = strings.ReplaceAll(s, "{quote}", f.quote("alice", "alice"))
				}
				if strings.Contains(s, "{bigquote}") {
					s = strings.ReplaceAll(s, "{bigquote}", f.quoteOf("alice", "alice", `{"tool":"video","resolution":"720p","duration_ms":60000}`))
				}
				if strings.Contains(s, "{hold2}") {
					vars["hold2"] = f.reserve("job-2")
				}
				if strings.Contains(s, "{grant2}") {
					vars["grant2"] = f.grantOf("team")
				}
				for k, v := range vars {
					s = strings.ReplaceAll(s, "{"+k+"}", v)
				}
				return s
			}
			req := func(path, body, key string) request {
				r := request{method: tc.method, path: fill(path), user: user, role: tc.role, body: fill(body)}
				if tc.keyed {
					r.key = "k1"
				}
				switch key {
				case "-":
					r.key = ""
				case "":
				default:
					r.key = key
				}
				return r
			}
			// refused: wrote nothing, on any account
			unchanged := func(t *testing.T, what string, do func()) {
				t.Helper()
				before := map[string]string{}
				for _, a := range []string{"alice", "bob", "team"} {
					before[a] = f.snapshot(a)
				}
				do()
				for _, a := range []string{"alice", "bob", "team"} {
					if f.snapshot(a) != before[a] {
						t.Errorf("%s: account %s changed", what, a)
					}
				}
			}

			t.Run("Forbidden", func(t *testing.T) {
				unchanged(t, "forbidden", func() {
					for _, as := range []struct{ user, role string }{{"bob", tc.role}, {"carol", tc.role}, {"bob", "liar"}} {
						if as.user == "bob" && account == "team" {
							continue // bob is a member of the team
						}
						r := req(tc.path, tc.body, "")
						r.user, r.role = as.user, as.role
						rep := f.do(r)
						if rep.status != 403 || rep.problem(t).Code != "forbidden" {
							t.Errorf("as %s/%s: %d %s", as.user, as.role, rep.status, rep.body)
						}
					}
					r := req(tc.path, tc.body, "")
					r.user = ""
					if rep := f.do(r); rep.status != 401 || rep.problem(t).Code != "unauthenticated" {
						t.Errorf("anonymous: %d %s", rep.status, rep.body)
					}
					if tc.needsRole {
						r := req(tc.path, tc.body, "")
						r.role = ""
						if rep := f.do(r); rep.status != 403 || rep.problem(t).Code != "forbidden" {
							t.Errorf("without role %q: %d %s", tc.role, rep.status, rep.body)
						}
					}
				})
			})

			t.Run("BadInput", func(t *testing.T) {
				for i, b := range tc.bad {
					if b.key == "" && tc.keyed {
						b.key = fmt.Sprintf("bad-%d", i) // a refusal is recorded for its key
					}
					unchanged(t, b.name, func() {
						path := tc.path
						if b.path != "" {
							path = b.path
						}
						if b.query != "" {
							path += "?" + b.query
						}
						r := req(path, b.body, b.key)
						if b.user != "" {
							r.user = b.user
						}
						rep := f.do(r)
						p := rep.problem(t)
						if rep.status < 400 || p.Code != b.code || p.Field != b.field {
							t.Errorf("%s: %d code %q field %q, want code %q field %q: %s", b.name, rep.status, p.Code, p.Field, b.code, b.field, rep.body)
						}
					})
				}
			})

			t.Run("Success", func(t *testing.T) {
				first := f.do(req(tc.path, tc.body, ""))
				if first.status != tc.status || first.header.Get("Content-Type") != "application/json" {
					t.Fatalf("%d %s", first.status, first.body)
				}
				var v map[string]any
				if err := json.Unmarshal(first.body, &v); err != nil {
					t.Fatalf("response is not a JSON object: %v: %s", err, first.body)
				}
				if first.header.Get("Idempotent-Replayed") != "" {
					t.Errorf("first call says it replayed")
				}
				if !tc.keyed {
					return
				}
				after := f.snapshot(account)
				again := f.do(req(tc.path, tc.body, ""))
				if again.status != tc.status || again.header.Get("Idempotent-Replayed") != "true" || !sameJSON(t, again.body, first.body) {
					t.Errorf("replay: %d %q\n%s\nfirst:\n%s", again.status, again.header.Get("Idempotent-Replayed"), again.body, first.body)
				}
				if tc.other != "" || tc.otherPath != "" {
					path, body := tc.path, tc.body
					if tc.other != "" {
						body = tc.other
					}
					if tc.otherPath != "" {
						path = tc.otherPath
					}
					r := req(path, body, "")
					before := f.snapshot(account)
					conflict := f.do(r)
					if p := conflict.problem(t); conflict.status != 409 || p.Code != "idempotency_conflict" {
						t.Errorf("a different request with the same key: %d %s", conflict.status, conflict.body)
					}
					if f.snapshot(account) != before {
						t.Errorf("the conflict wrote")
					}
				}
				if f.snapshot(account) != after && tc.otherPath == "" {
					t.Errorf("the replay wrote")
				}
			})
		})
	}
}

// sameJSON compares two JSON documents by value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

var _ = http.StatusOK
