package credithttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/credithttp"
	"github.com/creditkit/credits/memstore"
)

// Mount the API under /api with an authorizer that lets a signed-in user
// act on their own account only. The page asks for a quote, shows it, and
// posts the sealed quote back to reserve it under an Idempotency-Key.
func ExampleNew() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{
		Now:      func() time.Time { return now },
		QuoteKey: []byte("an example key, 32 bytes or more: use crypto/rand"),
		Signup:   credits.Reward{Amount: credits.Whole(50)},
	})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})

	api, err := credithttp.New(credithttp.Config{
		Ledger: ledger,
		Authorize: func(r *http.Request) (credithttp.Principal, error) {
			user := r.Header.Get("X-Demo-User") // your session check goes here
			switch {
			case user == "":
				return credithttp.Principal{}, credithttp.ErrUnauthenticated
			case r.PathValue("account") != user && r.PathValue("account") != "":
				return credithttp.Principal{}, credithttp.ErrForbidden
			}
			return credithttp.Principal{Account: user}, nil
		},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", http.StripPrefix("/api", api))

	call := func(method, path, key, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("X-Demo-User", "alice")
		r.Header.Set("Content-Type", "application/json")
		if key != "" {
			r.Header.Set("Idempotency-Key", key)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}

	w := call("POST", "/api/accounts/alice/quote", "", `{"tool":"video","resolution":"720p","duration_ms":5000}`)
	var q credithttp.QuoteResponse
	_ = json.Unmarshal(w.Body.Bytes(), &q)
	fmt.Println(w.Code, q.Quote.Breakdown)

	w = call("POST", "/api/accounts/alice/reserve", "job-42", `{"quote":"`+q.Sealed+`"}`)
	var res credits.ReserveResult
	_ = json.Unmarshal(w.Body.Bytes(), &res)
	fmt.Println(w.Code, "held", res.Hold.Amount, "available", res.Available)

	w = call("POST", "/api/accounts/alice/reserve", "job-42", `{"quote":"`+q.Sealed+`"}`)
	fmt.Println(w.Code, "replayed:", w.Header().Get("Idempotent-Replayed"))

	w = call("GET", "/api/accounts/bob/balance", "", "")
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	var p credithttp.Problem
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	fmt.Println(p.Code)
	// Output:
	// 200 5 s × 8 credits/s at 720p = 40 credits
	// 201 held 40 available 10
	// 201 replayed: true
	// 403 application/problem+json
	// forbidden
}
