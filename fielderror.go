package credits

import "fmt"

// FieldError is a request refused because of one of its fields, named as
// an API client sends it: by its JSON name ("amount", "reserve_key",
// "metadata"). Every such refusal writes nothing.
//
// It matches [ErrInvalidRequest] with errors.Is, or [ErrInvalidAmount]
// when the field is an amount that is not a valid, positive number of
// credits, or [ErrInvalidQuote] (a kind of ErrInvalidRequest) when it is a
// sealed quote that does not open. Its message is "credits: invalid
// request: " (or "credits: invalid amount: ", "credits: invalid sealed
// quote: ") followed by the field and the reason, such as "account is
// required".
type FieldError struct {
	// Field is the JSON name of the field; a nested field is dotted
	// ("usage.images").
	Field string
	// Reason says what is wrong with it, as the rest of a sentence whose
	// subject is the field ("is required", "is longer than 128 bytes").
	Reason string
	kind   error
}

func (e *FieldError) Error() string { return e.kind.Error() + ": " + e.Field + " " + e.Reason }

// Unwrap returns the sentinel the error matches: ErrInvalidRequest,
// ErrInvalidAmount or ErrInvalidQuote.
func (e *FieldError) Unwrap() error { return e.kind }

// fieldErr refuses a request for its field (a JSON name).
func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), kind: ErrInvalidRequest}
}

// amountErr refuses a request for its amount field (a JSON name).
func amountErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), kind: ErrInvalidAmount}
}
