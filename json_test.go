package credits_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/creditkit/credits"
)

var jsonNow = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func jsonQuotes(t testing.TB) (video, image credits.Quote) {
	t.Helper()
	c := credits.DefaultCatalog()
	video, err := c.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second}, jsonNow)
	if err != nil {
		t.Fatal(err)
	}
	image, err = c.Quote(credits.QuoteRequest{Tool: "image"}, jsonNow)
	if err != nil {
		t.Fatal(err)
	}
	return video, image
}

// The JSON of every API type with a duration: milliseconds under *_ms.
func TestJSONDurationsInMilliseconds(t *testing.T) {
	video, image := jsonQuotes(t)
	for _, c := range []struct {
		v    any
		want string
	}{
		{video, `{"tool":"video","resolution":"720p","unit":"second","base_rate":"8","unit_rate":"8","rounding":"up","total":"40","breakdown":"5 s × 8 credits/s at 720p = 40 credits","catalog_version":"2026-11-default","expires_at":"2026-12-01T09:15:00Z","duration_ms":5000,"billed_duration_ms":5000,"increment_ms":1000}`},
		{image, `{"tool":"image","unit":"image","base_rate":"7","unit_rate":"7","images":1,"total":"7","breakdown":"1 image × 7 credits = 7 credits","catalog_version":"2026-11-default","expires_at":"2026-12-01T09:15:00Z"}`},
		{credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 4200 * time.Millisecond}, `{"tool":"video","resolution":"720p","duration_ms":4200}`},
		{credits.QuoteRequest{Tool: "image", Images: 2}, `{"tool":"image","images":2}`},
		{credits.Usage{Duration: 3400 * time.Millisecond}, `{"duration_ms":3400}`},
		{credits.Usage{Images: 1}, `{"images":1}`},
		{credits.Usage{}, `{}`},
		{credits.ReserveRequest{Account: "alice", SealedQuote: "q1.x.y", TTL: 10 * time.Minute, Key: "job-1", Quote: video},
			`{"account":"alice","quote":"q1.x.y","ttl_ms":600000}`},
		{credits.ReserveRequest{Account: "alice"}, `{"account":"alice"}`},
		{credits.ExtendRequest{Hold: "hold_1", TTL: 90 * time.Second}, `{"hold":"hold_1","ttl_ms":90000}`},
		{credits.ChargeRequest{Account: "alice", SealedQuote: "q1.x.y", Key: "k"}, `{"account":"alice","quote":"q1.x.y"}`},
		{credits.CaptureRequest{Hold: "hold_1", Usage: credits.Usage{Duration: 3 * time.Second}}, `{"hold":"hold_1","usage":{"duration_ms":3000},"amount":"0"}`},
		// A duration to the nanosecond keeps its fraction.
		{credits.Usage{Duration: 1500*time.Millisecond + 250*time.Microsecond}, `{"duration_ms":1500.25}`},
		{credits.Usage{Duration: time.Nanosecond}, `{"duration_ms":0.000001}`},
		{credits.Usage{Duration: -1500 * time.Millisecond}, `{"duration_ms":-1500}`},
		{credits.Usage{Duration: math.MinInt64}, `{"duration_ms":-9223372036854.775808}`},
		{credits.Usage{Duration: math.MaxInt64}, `{"duration_ms":9223372036854.775807}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%T %+v:\n got %s (%v)\nwant %s", c.v, c.v, b, err, c.want)
			continue
		}
		// And back.
		p := reflect.New(reflect.TypeOf(c.v))
		if err := json.Unmarshal(b, p.Interface()); err != nil {
			t.Errorf("%T: decode %s: %v", c.v, b, err)
			continue
		}
		want := reflect.ValueOf(c.v)
		if r, ok := c.v.(credits.ReserveRequest); ok { // Quote and Key are not in the JSON
			r.Quote, r.Key = credits.Quote{}, ""
			want = reflect.ValueOf(r)
		}
		if r, ok := c.v.(credits.ChargeRequest); ok {
			r.Key = ""
			want = reflect.ValueOf(r)
		}
		if got := p.Elem().Interface(); !reflect.DeepEqual(got, want.Interface()) {
			t.Errorf("%T round trip: got %+v, want %+v", c.v, got, want.Interface())
		}
	}
}

// Any duration survives JSON exactly: an integer of milliseconds when it
// is one, decimals to the nanosecond otherwise.
func TestJSONDurationsRoundTripRapid(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		d := time.Duration(rapid.OneOf(
			rapid.Int64(),
			rapid.Map(rapid.Int64Range(-1e12, 1e12), func(ms int64) int64 { return ms * int64(time.Millisecond) }),
			rapid.Int64Range(-2e6, 2e6),
		).Draw(rt, "d"))
		b, err := json.Marshal(credits.Usage{Duration: d})
		if err != nil {
			rt.Fatal(err)
		}
		var u credits.Usage
		if err := json.Unmarshal(b, &u); err != nil || u.Duration != d {
			rt.Fatalf("%d ns → %s → %d ns (%v)", d, b, u.Duration, err)
		}
		if d == 0 {
			if string(b) != `{}` {
				rt.Fatalf("zero encodes as %s", b)
			}
			return
		}
		text := strings.TrimSuffix(strings.TrimPrefix(string(b), `{"duration_ms":`), "}")
		if d%time.Millisecond == 0 && strings.Contains(text, ".") {
			rt.Fatalf("%d ns, a whole number of ms, encodes with decimals: %s", d, text)
		}
		// The decimal reading of the text is the duration: ms × 10^6 = ns.
		whole, frac, _ := strings.Cut(strings.TrimPrefix(text, "-"), ".")
		ns, err := strconv.ParseInt(whole+(frac + "000000")[:6], 10, 64)
		if err != nil && d != math.MinInt64 {
			rt.Fatalf("%s: %v", text, err)
		}
		if strings.HasPrefix(text, "-") {
			ns = -ns
		}
		if d != math.MinInt64 && time.Duration(ns) != d {
			rt.Fatalf("%s reads as %d ns, want %d", text, ns, d)
		}
	})
}

// Bad durations are refused naming the key, as ErrInvalidRequest.
func TestJSONBadDurations(t *testing.T) {
	for _, c := range []struct {
		into any
		body string
		key  string
	}{
		{&credits.Usage{}, `{"duration_ms":"5000"}`, "duration_ms"},
		{&credits.Usage{}, `{"duration_ms":5e3}`, "duration_ms"},
		{&credits.Usage{}, `{"duration_ms":1.0000001}`, "duration_ms"},
		{&credits.Usage{}, `{"duration_ms":9223372036855}`, "duration_ms"},
		{&credits.Usage{}, `{"duration_ms":-9223372036854.775809}`, "duration_ms"},
		{&credits.Usage{}, `{"duration_ms":99999999999999999999999}`, "duration_ms"},
		{&credits.Usage{}, `{"duration_ms":true}`, "duration_ms"},
		{&credits.Usage{}, `{"duration_ms":{}}`, "duration_ms"},
		{&credits.Usage{}, `{"duration":1.5}`, "duration"},
		{&credits.Usage{}, `{"duration":"5s"}`, "duration"},
		{&credits.QuoteRequest{}, `{"tool":"video","duration_ms":-0.0000001}`, "duration_ms"},
		{&credits.Quote{}, `{"tool":"video","increment_ms":"1000"}`, "increment_ms"},
		{&credits.Quote{}, `{"tool":"video","billed_duration_ms":1e3}`, "billed_duration_ms"},
		{&credits.Quote{}, `{"tool":"video","billed_duration":1.5}`, "billed_duration"},
		{&credits.ReserveRequest{}, `{"account":"a","ttl_ms":"10m"}`, "ttl_ms"},
		{&credits.ReserveRequest{}, `{"account":"a","quote":{"tool":"video","total":"1"}}`, "quote"},
		{&credits.ReserveRequest{}, `{"account":"a","quote":40}`, "quote"},
		{&credits.ChargeRequest{}, `{"account":"a","quote":{"tool":"image"}}`, "quote"},
		{&credits.ExtendRequest{}, `{"hold":"h","ttl_ms":-}`, ""}, // not JSON at all: encoding/json's syntax error
	} {
		err := json.Unmarshal([]byte(c.body), c.into)
		if c.key == "" {
			if err == nil {
				t.Errorf("%s: decoded", c.body)
			}
			continue
		}
		var fe *credits.FieldError
		if !errors.Is(err, credits.ErrInvalidRequest) || !errors.As(err, &fe) || fe.Field != c.key || !strings.HasPrefix(err.Error(), "credits: invalid request: "+c.key+" ") {
			t.Errorf("%T %s: %v; want a *FieldError for %s", c.into, c.body, err, c.key)
		}
		if code, status := credits.Code(err); code != "invalid_request" || status != 400 {
			t.Errorf("%s: Code = %s %d", c.body, code, status)
		}
	}
	// Accepted: trailing zeros past the nanosecond, null, a negative zero.
	for body, want := range map[string]time.Duration{
		`{"duration_ms":1.50000000}`: 1500 * time.Microsecond,
		`{"duration_ms":null}`:       0,
		`{"duration_ms":-0}`:         0,
		`{"duration_ms":0.000001}`:   time.Nanosecond,
	} {
		var u credits.Usage
		if err := json.Unmarshal([]byte(body), &u); err != nil || u.Duration != want {
			t.Errorf("%s: %v, %v; want %v", body, u.Duration, err, want)
		}
	}
}

// legacyVideoQuote is a video quote as versions before durations in
// milliseconds encoded it, and as their hold rows and records keep it.
const legacyVideoQuote = `{"tool":"video","resolution":"720p","unit":"second","base_rate":"8","unit_rate":"8","duration":5000000000,"billed_duration":5000000000,"increment":1000000000,"rounding":"up","total":"40","breakdown":"5 s × 8 credits/s at 720p = 40 credits","catalog_version":"2026-11-default","expires_at":"2026-12-01T09:15:00Z"}`

// JSON written by earlier versions decodes to the same values: the
// nanosecond keys are read where the millisecond keys are absent.
func TestJSONLegacyDurations(t *testing.T) {
	video, _ := jsonQuotes(t)
	var q credits.Quote
	if err := json.Unmarshal([]byte(legacyVideoQuote), &q); err != nil || !reflect.DeepEqual(q, video) {
		t.Fatalf("legacy quote: %+v, %v\nwant %+v", q, err, video)
	}
	// A legacy hold, as a hold row or a full record keeps it.
	holdJSON := `{"id":"hold_1","account":"a","status":"open","amount":"40","captured":"0","refunded":"0","portions":[],"quote":` + legacyVideoQuote +
		`,"created_at":"2026-12-01T09:00:00Z","deadline":"2026-12-01T10:00:00Z"}`
	var h credits.Hold
	if err := json.Unmarshal([]byte(holdJSON), &h); err != nil || !reflect.DeepEqual(h.Quote, video) {
		t.Fatalf("legacy hold: %+v, %v", h, err)
	}
	// The _ms key wins over the legacy one; each key is read on its own.
	mixed := strings.Replace(legacyVideoQuote, `"duration":5000000000`, `"duration":1,"duration_ms":5000`, 1)
	if err := json.Unmarshal([]byte(mixed), &q); err != nil || q.Duration != 5*time.Second || q.Increment != time.Second {
		t.Errorf("mixed quote: %+v, %v", q, err)
	}
	for body, want := range map[string]time.Duration{
		`{"duration":3000000000}`: 3 * time.Second,
		`{"duration":7}`:          7,
		`{"duration":null}`:       0,
	} {
		var u credits.Usage
		if err := json.Unmarshal([]byte(body), &u); err != nil || u.Duration != want {
			t.Errorf("legacy usage %s: %v, %v", body, u.Duration, err)
		}
	}
	for body, want := range map[string]credits.ReserveRequest{
		`{"account":"a","ttl":600000000000}`:                    {Account: "a", TTL: 10 * time.Minute},
		`{"account":"a","ttl":1,"ttl_ms":600000}`:               {Account: "a", TTL: 10 * time.Minute},
		`{"account":"a","quote":"q1.x.y","metadata":{"k":"v"}}`: {Account: "a", SealedQuote: "q1.x.y", Metadata: map[string]string{"k": "v"}},
	} {
		var r credits.ReserveRequest
		if err := json.Unmarshal([]byte(body), &r); err != nil || !reflect.DeepEqual(r, want) {
			t.Errorf("%s: %+v, %v", body, r, err)
		}
	}
	var e credits.ExtendRequest
	if err := json.Unmarshal([]byte(`{"hold":"h","ttl":60000000000}`), &e); err != nil || e.TTL != time.Minute || e.Hold != "h" {
		t.Errorf("legacy extend: %+v, %v", e, err)
	}
	var qr credits.QuoteRequest
	if err := json.Unmarshal([]byte(`{"tool":"video","resolution":"720p","duration":5000000000}`), &qr); err != nil || qr.Duration != 5*time.Second {
		t.Errorf("legacy quote request: %+v, %v", qr, err)
	}
}

// A record written by an earlier version, whose result keeps the whole
// hold with its quote's durations in nanoseconds, still replays as it was;
// and a capture's record keeps its request in the encoding it always had,
// so that a retry of a capture recorded by an earlier version is a replay.
func TestJSONLegacyRecordsReplay(t *testing.T) {
	ctx := context.Background()
	now := jsonNow
	store, l := replayLedger(t, &now)
	video, err := l.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Grant(ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "g"}); err != nil {
		t.Fatal(err)
	}
	// The whole request and the whole hold, as records kept them before
	// they kept a hold by ID, and before durations were in milliseconds.
	request := `{"op":"reserve","account":"a","quote":{"tool":"video","resolution":"720p","billed_duration":5000000000,"total":"40","catalog_version":"2026-11-default"}}`
	result := `{"ok":{"hold":{"id":"hold_old","account":"a","key":"old","status":"open","amount":"40","captured":"0","refunded":"0",` +
		`"portions":[{"bucket":"grant_x","amount":"40","captured":"0","refunded":"0"}],"quote":` + legacyVideoQuote +
		`,"created_at":"2026-12-01T09:00:00Z","deadline":"2026-12-01T10:00:00Z"},"available":"60"}}`
	old := &credits.Record{Key: "k:old", Operation: "reserve", Request: []byte(request), Result: []byte(result), CreatedAt: now}
	if err := store.Update(ctx, credits.Query{Account: "a"}, func(*credits.State) (*credits.Change, error) {
		return &credits.Change{Record: old}, nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "old"})
	want := credits.ReserveResult{Hold: credits.Hold{ID: "hold_old", Account: "a", Key: "old", Status: credits.HoldOpen, Amount: video.Total,
		Portions: []credits.Portion{{Bucket: "grant_x", Amount: video.Total}}, Quote: video, CreatedAt: now, Deadline: now.Add(time.Hour)},
		Available: credits.Whole(60), Replay: credits.Replay{Replayed: true}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("replay of a legacy record = %+v, %v\nwant %+v", got, err, want)
	}

	// A capture by usage: its record's request is the encoding of earlier
	// versions, byte for byte.
	res, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "job"})
	if err != nil {
		t.Fatal(err)
	}
	usage := credits.Usage{Duration: 3200 * time.Millisecond}
	first, err := l.Capture(ctx, credits.CaptureRequest{Hold: res.Hold.ID, Usage: usage, Key: "cap"})
	if err != nil {
		t.Fatal(err)
	}
	rec := recordOf(t, store, "a", "k:cap")
	if want := `{"hold":"` + res.Hold.ID + `","usage":{"duration":3200000000},"amount":"0"}`; string(rec.Request) != want {
		t.Errorf("capture record request:\n got %s\nwant %s", rec.Request, want)
	}
	again, err := l.Capture(ctx, credits.CaptureRequest{Hold: res.Hold.ID, Usage: usage, Key: "cap"})
	first.Replayed = true
	if err != nil || !reflect.DeepEqual(again, first) {
		t.Errorf("capture retried: %+v, %v", again, err)
	}
}

// Every struct field of type time.Duration with a JSON tag, in the
// package's non-test files, is named *_ms, and its type is one whose JSON
// this file checks; only the records' internal requests, whose encoding
// never changes, keep nanoseconds. A duration field added later without
// its conversion fails here.
func TestJSONEveryDurationIsMilliseconds(t *testing.T) {
	checked := []string{"Quote", "QuoteRequest", "Usage", "ReserveRequest", "ExtendRequest"}
	frozen := []string{"quoteFingerprint", "spendRequest", "byHold", "capturedRequest"}
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	found := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return true
			}
			for _, field := range st.Fields.List {
				sel, ok := field.Type.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Duration" || field.Tag == nil {
					continue
				}
				tag := reflect.StructTag(strings.Trim(field.Tag.Value, "`")).Get("json")
				key, _, _ := strings.Cut(tag, ",")
				switch {
				case slices.Contains(frozen, ts.Name.Name) || key == "-":
				case !ts.Name.IsExported():
					// The wrappers of json.go, which convert.
				case !strings.HasSuffix(key, "_ms"):
					t.Errorf("%s: %s.%s is tagged %q: a duration in JSON is *_ms", fset.Position(field.Pos()), ts.Name.Name, field.Names[0].Name, key)
				case !slices.Contains(checked, ts.Name.Name):
					t.Errorf("%s: %s has a duration: give it the JSON methods of json.go and check it here", fset.Position(field.Pos()), ts.Name.Name)
				default:
					found[ts.Name.Name] = true
				}
			}
			return true
		})
	}
	for _, name := range checked {
		if !found[name] {
			t.Errorf("%s has no duration field any more: update this test", name)
		}
	}
}

func ExampleQuote_MarshalJSON() {
	q, _ := credits.DefaultCatalog().Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 4200 * time.Millisecond},
		time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	b, _ := json.Marshal(q)
	var fields map[string]any
	_ = json.Unmarshal(b, &fields)
	fmt.Println(fields["duration_ms"], fields["billed_duration_ms"], fields["increment_ms"], fields["total"], fields["expires_at"])
	// Output: 4200 5000 1000 40 2026-12-01T09:15:00Z
}
