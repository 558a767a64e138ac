package credithttp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/credithttp"
	"github.com/creditkit/credits/memstore"
)

// BenchmarkCharge measures what the HTTP layer adds to a one-step charge
// on memstore: the ledger called directly (the baseline), the handler
// called in process (authorize, strict decode, sealed quote opened,
// problem-or-JSON reply), and the same over a loopback connection. Each
// reports its ratio to the direct call as x_direct.
//
//	go test -run x -bench BenchmarkCharge -benchmem ./credithttp
func BenchmarkCharge(b *testing.B) {
	setup := func(b *testing.B) (*credits.Ledger, http.Handler, string, credits.Quote) {
		ctx := context.Background()
		now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		ledger, err := credits.NewLedger(memstore.New(), &credits.Config{
			Now:      func() time.Time { return now },
			QuoteKey: []byte("credithttp benchmark key, 32 bytes or more"),
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"}); err != nil {
			b.Fatal(err)
		}
		if _, err := ledger.Grant(ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(1_000_000_000), Kind: credits.KindPurchase, Key: "g"}); err != nil {
			b.Fatal(err)
		}
		h, err := credithttp.New(credithttp.Config{Ledger: ledger, Authorize: authorize})
		if err != nil {
			b.Fatal(err)
		}
		q, err := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "image"})
		if err != nil {
			b.Fatal(err)
		}
		sealed, err := ledger.SealQuote(q)
		if err != nil {
			b.Fatal(err)
		}
		return ledger, h, sealed, q
	}
	var direct float64
	b.Run("direct", func(b *testing.B) {
		ledger, _, _, q := setup(b)
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: q, Key: fmt.Sprint("c", i)}); err != nil {
				b.Fatal(err)
			}
		}
		direct = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	report := func(b *testing.B) {
		if direct > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/direct, "x_direct")
		}
	}
	b.Run("handler", func(b *testing.B) {
		_, h, sealed, _ := setup(b)
		body := `{"quote":"` + sealed + `"}`
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			r := httptest.NewRequest("POST", "/accounts/alice/charge", strings.NewReader(body))
			r.Header.Set("X-User", "alice")
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Idempotency-Key", fmt.Sprint("c", i))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 201 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
		report(b)
	})
	b.Run("loopback", func(b *testing.B) {
		_, h, sealed, _ := setup(b)
		srv := httptest.NewServer(h)
		defer srv.Close()
		client := srv.Client()
		body := `{"quote":"` + sealed + `"}`
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			r, _ := http.NewRequest("POST", srv.URL+"/accounts/alice/charge", strings.NewReader(body))
			r.Header.Set("X-User", "alice")
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Idempotency-Key", fmt.Sprint("c", i))
			resp, err := client.Do(r)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 {
				b.Fatalf("%d", resp.StatusCode)
			}
		}
		report(b)
	})
}
