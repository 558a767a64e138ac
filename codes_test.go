package credits_test

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"testing"

	"github.com/creditkit/credits"
)

// Every sentinel the package declares has a code of its own and a status,
// found by reading errors.go, so a sentinel added later without a code
// fails here.
func TestEveryErrorHasACode(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	sentinels := map[string]error{
		"ErrInvalidAmount": credits.ErrInvalidAmount, "ErrOverflow": credits.ErrOverflow, "ErrInvalidRequest": credits.ErrInvalidRequest,
		"ErrInsufficientCredits": credits.ErrInsufficientCredits, "ErrUnknownAccount": credits.ErrUnknownAccount, "ErrAccountExists": credits.ErrAccountExists,
		"ErrUnknownTool": credits.ErrUnknownTool, "ErrUnknownResolution": credits.ErrUnknownResolution, "ErrUnknownPlan": credits.ErrUnknownPlan,
		"ErrFeedLeased": credits.ErrFeedLeased, "ErrUnknownGrant": credits.ErrUnknownGrant, "ErrGrantVoided": credits.ErrGrantVoided,
		"ErrUnknownHold": credits.ErrUnknownHold, "ErrHoldExpired": credits.ErrHoldExpired, "ErrHoldSettled": credits.ErrHoldSettled,
		"ErrNotCaptured": credits.ErrNotCaptured, "ErrExceedsHold": credits.ErrExceedsHold, "ErrRefundExceedsCharge": credits.ErrRefundExceedsCharge,
		"ErrQuoteExpired": credits.ErrQuoteExpired, "ErrQuoteMismatch": credits.ErrQuoteMismatch, "ErrWrongPlan": credits.ErrWrongPlan,
		"ErrMemberLimit": credits.ErrMemberLimit, "ErrNotMember": credits.ErrNotMember, "ErrIdempotencyConflict": credits.ErrIdempotencyConflict,
		"ErrDailyUnavailable": credits.ErrDailyUnavailable, "ErrInvalidCatalog": credits.ErrInvalidCatalog, "ErrTransient": credits.ErrTransient,
		"ErrInvalidQuote": credits.ErrInvalidQuote, "ErrNoQuoteKey": credits.ErrNoQuoteKey,
	}
	declared := 0
	seen := map[string]string{}
	snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, spec := range g.Specs {
			for _, name := range spec.(*ast.ValueSpec).Names {
				if !name.IsExported() {
					continue
				}
				declared++
				sentinel, ok := sentinels[name.Name]
				if !ok {
					t.Errorf("%s is declared in errors.go but not checked here: add it, and give it a code", name.Name)
					continue
				}
				// Wrapped, as the ledger returns them.
				code, status := credits.Code(fmt.Errorf("credits: something: %w", sentinel))
				if !snake.MatchString(code) || code == "internal" || status < 400 || status > 599 {
					t.Errorf("Code(%s) = %q, %d", name.Name, code, status)
				}
				if other, dup := seen[code]; dup {
					t.Errorf("%s and %s share the code %q", name.Name, other, code)
				}
				seen[code] = name.Name
			}
		}
	}
	if declared != len(sentinels) {
		t.Errorf("errors.go declares %d sentinels, the test knows %d", declared, len(sentinels))
	}
}

func TestCodeOfTypedAndOtherErrors(t *testing.T) {
	for _, c := range []struct {
		err    error
		code   string
		status int
	}{
		{nil, "", 200},
		{&credits.InsufficientCreditsError{}, "insufficient_credits", 402},
		{&credits.PlanMismatchError{}, "wrong_plan", 409},
		{&credits.MemberLimitError{}, "member_limit", 403},
		{&credits.IdempotencyConflictError{}, "idempotency_conflict", 409},
		{&credits.CatalogError{}, "invalid_catalog", 400},
		{fmt.Errorf("%w: %w", credits.ErrTransient, context.DeadlineExceeded), "transient", 503},
		{fmt.Errorf("store: %w", context.DeadlineExceeded), "timeout", 504},
		{context.Canceled, "canceled", 499},
		{errors.New("disk on fire"), "internal", 500},
	} {
		if code, status := credits.Code(c.err); code != c.code || status != c.status {
			t.Errorf("Code(%v) = %q, %d; want %q, %d", c.err, code, status, c.code, c.status)
		}
	}
}

// A service answers errors by code, without a switch over sentinels.
func ExampleCode() {
	err := error(&credits.InsufficientCreditsError{Account: "alice", Available: credits.Whole(3), Requested: credits.Whole(7)})
	code, status := credits.Code(err)
	fmt.Println(status, code)
	// Output: 402 insufficient_credits
}
