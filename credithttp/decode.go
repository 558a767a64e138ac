package credithttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/creditkit/credits"
)

// decode reads r's body, a JSON object, into dst strictly: at most
// MaxBodyBytes, no unknown field, no second value. An empty body is the
// empty object. A refusal names the field it concerns.
//
// The request must say Content-Type: application/json, even with an empty
// body: a browser sends that only from a page of the same origin (or one
// the server allows by CORS), never from another site's form or no-cors
// fetch, so a cookie-authenticated API is not open to cross-site requests.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, dst any) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return &httpError{code: "unsupported_media_type", status: http.StatusUnsupportedMediaType, field: "Content-Type",
			detail: fmt.Sprintf("Content-Type %q is not application/json (required, even with an empty body)", ct)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &httpError{code: "body_too_large", status: http.StatusRequestEntityTooLarge,
				detail: fmt.Sprintf("the body is larger than %d bytes", mbe.Limit)}
		}
		// The client went away or sent a broken body (a truncated chunked
		// encoding): its fault, not the server's.
		return badField("body", "could not be read: "+err.Error())
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if t := bytes.TrimSpace(body); t[0] != '{' {
		return badField("body", "is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badField("body", "has more than one JSON value")
	}
	// encoding/json matches keys case-insensitively (with Unicode folding:
	// "Member", "MEMBER" and "ttl_mſ" all fill their field) and keeps the
	// last of duplicate keys: what a proxy or a log reads from the body
	// could then differ from what is decided. Keys must match exactly and
	// appear once.
	return exactKeys(json.NewDecoder(bytes.NewReader(body)), reflect.TypeOf(dst), "")
}

// exactKeys walks the next JSON value of dec, which decodes into a value of
// type t (nil: any), and refuses a key that appears twice in one object or
// that names a struct field other than by its exact JSON name. prefix is
// the dotted name of the value ("" for the body).
func exactKeys(dec *json.Decoder, t reflect.Type, prefix string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return decodeError(err)
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return decodeError(err)
			}
			key, _ := tok.(string)
			name := key
			if prefix != "" {
				name = prefix + "." + key
			}
			if seen[key] {
				return badField(name, "is given more than once")
			}
			seen[key] = true
			var elem reflect.Type
			switch {
			case t == nil || t == rawType:
			case t.Kind() == reflect.Map:
				elem = t.Elem()
			case t.Kind() == reflect.Struct:
				f, ok := fieldByJSONName(t, key)
				if !ok {
					return badField(name, "is not a field of this request")
				}
				elem = f.Type
			}
			if err := exactKeys(dec, elem, name); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return decodeError(err)
		}
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && t != rawType && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := exactKeys(dec, elem, prefix); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return decodeError(err)
		}
	}
	return nil
}

// rawType is an amount, which takes any JSON value (parse judges it).
var rawType = reflect.TypeFor[amount]()

// fieldByJSONName returns the field of struct type t whose JSON name is
// exactly name.
func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// decodeError names the field a JSON decoding error is about.
func decodeError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return badField(field, "must be "+jsonKind(te.Type.Kind().String()))
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return badField("body", "is not valid JSON: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return badField(strings.Trim(name, `"`), "is not a field of this request")
	}
	return badField("body", "is not valid: "+strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind says a Go kind as a JSON type.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	}
	return "of another type"
}

// amount is a credits amount in a request body, parsed after decoding so
// that a bad one is refused naming its field: a JSON string ("12.5") or
// number (12.5) of credits, at most three decimals.
type amount json.RawMessage

// UnmarshalJSON keeps the raw value for parse.
func (a *amount) UnmarshalJSON(b []byte) error {
	*a = append((*a)[:0], b...)
	return nil
}

// given reports whether the field was in the body (and not null).
func (a amount) given() bool { return len(a) > 0 && string(a) != "null" }

// parse returns the amount, refusing a bad one for field.
func (a amount) parse(field string) (credits.Credits, error) {
	var c credits.Credits
	if !a.given() {
		return c, nil
	}
	if err := c.UnmarshalJSON(a); err != nil {
		return c, &httpError{code: "invalid_amount", status: http.StatusBadRequest, field: field,
			detail: field + " is not an amount of credits (a decimal string such as \"12.5\", at most 3 decimals)"}
	}
	return c, nil
}

// millis turns a count of milliseconds from a request into a Duration,
// refusing one that does not fit.
func millis(field string, ms int64) (time.Duration, error) {
	if ms > math.MaxInt64/int64(time.Millisecond) || ms < math.MinInt64/int64(time.Millisecond) {
		return 0, badField(field, "is out of range")
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// query reads a request's query parameters, refusing bad ones by name.
type query struct {
	v   map[string][]string
	err error
}

func newQuery(r *http.Request, allowed ...string) *query {
	q := &query{v: r.URL.Query()}
	for name := range q.v {
		if !contains(allowed, name) {
			q.fail(badField(name, "is not a parameter of this endpoint"))
		}
	}
	return q
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (q *query) fail(err error) {
	if q.err == nil {
		q.err = err
	}
}

// one returns the parameter's only value, "" when absent.
func (q *query) one(name string) string {
	vs := q.v[name]
	if len(vs) > 1 {
		q.fail(badField(name, "is given more than once"))
	}
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

func (q *query) int64(name string) int64 {
	s := q.one(name)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		q.fail(badField(name, "must be a whole number, 0 or more"))
	}
	return n
}

func (q *query) int(name string) int {
	n := q.int64(name)
	if n > math.MaxInt32 {
		q.fail(badField(name, "is too large"))
		return 0
	}
	return int(n)
}

func (q *query) bool(name string) bool {
	switch s := q.one(name); s {
	case "", "false", "0":
		return false
	case "true", "1":
		return true
	default:
		q.fail(badField(name, "must be true or false"))
		return false
	}
}

func (q *query) time(name string) time.Time {
	s := q.one(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		q.fail(badField(name, "must be an RFC 3339 time such as 2026-12-01T00:00:00Z"))
	}
	return t
}
