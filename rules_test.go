package credits_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

func TestHoldDueAt(t *testing.T) {
	deadline := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		name   string
		status credits.HoldStatus
		at     time.Time
		want   bool
	}{
		{"open, 1ns before the deadline", credits.HoldOpen, deadline.Add(-time.Nanosecond), false},
		{"open, exactly at the deadline", credits.HoldOpen, deadline, true},
		{"open, the same instant in another zone", credits.HoldOpen, deadline.In(time.FixedZone("x", 3600)), true},
		{"open, after the deadline", credits.HoldOpen, deadline.Add(time.Hour), true},
		{"captured, after the deadline", credits.HoldCaptured, deadline.Add(time.Hour), false},
		{"released, after the deadline", credits.HoldReleased, deadline.Add(time.Hour), false},
		{"expired, after the deadline", credits.HoldExpired, deadline.Add(time.Hour), false},
	}
	for _, tt := range tests {
		h := credits.Hold{ID: "h", Status: tt.status, Deadline: deadline}
		if got := h.DueAt(tt.at); got != tt.want {
			t.Errorf("%s: DueAt = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBucketLiveAndDueAt(t *testing.T) {
	expires := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		name      string
		remaining credits.Credits
		expiresAt time.Time
		at        time.Time
		live, due bool
	}{
		{"live, 1ns before expiry", credits.Whole(5), expires, expires.Add(-time.Nanosecond), true, false},
		{"live, exactly at expiry", credits.Whole(5), expires, expires, true, true},
		{"live, after expiry", credits.Whole(5), expires, expires.Add(time.Hour), true, true},
		{"live, never expires", credits.Whole(5), time.Time{}, expires.Add(100 * 365 * 24 * time.Hour), true, false},
		{"remaining zero, after expiry", credits.Credits{}, expires, expires.Add(time.Hour), false, false},
		{"remaining zero, never expires", credits.Credits{}, time.Time{}, expires, false, false},
		{"remaining negative, after expiry", credits.Whole(-1), expires, expires.Add(time.Hour), false, false},
	}
	for _, tt := range tests {
		b := credits.Bucket{ID: "b", Remaining: tt.remaining, ExpiresAt: tt.expiresAt}
		if got := b.Live(); got != tt.live {
			t.Errorf("%s: Live = %v, want %v", tt.name, got, tt.live)
		}
		if got := b.DueAt(tt.at); got != tt.due {
			t.Errorf("%s: DueAt = %v, want %v", tt.name, got, tt.due)
		}
	}
}

func TestCheckID(t *testing.T) {
	tests := []struct {
		name, id string
		ok       bool
	}{
		{"plain", "acct_1", true},
		{"newline", "new\nline", true},
		{"tab", "tab\there", true},
		{"unicode", "😀 שלום", true},
		{"exactly MaxIDLength bytes", strings.Repeat("x", credits.MaxIDLength), true},
		{"MaxIDLength+1 bytes", strings.Repeat("x", credits.MaxIDLength+1), false},
		{"empty", "", false},
		{"NUL", "a\x00b", false},
		{"DEL", "a\x7f", false},
		{"escape", "a\x1b[31m", false},
		{"carriage return", "a\rb", false},
		{"C1 control", "a\u0085b", false},
		{"invalid UTF-8", "ab\xff", false},
		{"U+FFFD", "a\ufffdb", false},
	}
	if credits.MaxIDLength != 128 {
		t.Fatalf("MaxIDLength = %d; the table assumes 128", credits.MaxIDLength)
	}
	ledger, err := credits.NewLedger(memstore.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tt := range tests {
		err := credits.CheckID(tt.id)
		if (err == nil) != tt.ok {
			t.Errorf("%s: CheckID(%q) = %v, want ok %v", tt.name, tt.id, err, tt.ok)
		}
		if err != nil && !errors.Is(err, credits.ErrInvalidRequest) {
			t.Errorf("%s: CheckID(%q) = %v, not an ErrInvalidRequest", tt.name, tt.id, err)
		}
		// The ledger applies the same rule: an ID CheckID accepts names an
		// unknown account, one it refuses is an invalid request.
		_, berr := ledger.Balance(ctx, tt.id)
		switch {
		case tt.ok && !errors.Is(berr, credits.ErrUnknownAccount):
			t.Errorf("%s: Balance(%q) = %v, want ErrUnknownAccount", tt.name, tt.id, berr)
		case !tt.ok && !errors.Is(berr, credits.ErrInvalidRequest):
			t.Errorf("%s: Balance(%q) = %v, want ErrInvalidRequest", tt.name, tt.id, berr)
		}
	}
}
