package credits_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/creditkit/credits"
)

// TestCatalogBadJSON: a malformed or contradictory catalog is refused with a
// *CatalogError (ErrInvalidCatalog) that names the offending field, and no
// catalog. These complement TestPricingParseCatalogErrors.
func TestCatalogBadJSON(t *testing.T) {
	const (
		img   = `{"id":"i","unit":"image","price":7}`
		vid   = `{"id":"v","unit":"second","rates":{"480p":5,"720p":8}}`
		tools = `"tools":[` + img + `,` + vid + `]`
	)
	doc := func(rest string) string { return `{"version":"v",` + rest + `}` }
	tool := func(t string) string { return doc(`"tools":[` + t + `]`) }
	plan := func(p string) string { return doc(tools + `,"plans":[` + p + `]`) }

	tests := []struct {
		name, json, field string
	}{
		// Duplicates.
		{"duplicate tool", doc(`"tools":[` + img + `,` + img + `]`), "tools[1].id"},
		{"duplicate tool, different unit", doc(`"tools":[` + img + `,{"id":"i","unit":"second","rates":{"p":1}}]`), "tools[1].id"},
		{"duplicate plan", plan(`{"id":"p"},{"id":"p","discount_bp":10}`), "plans[1].id"},
		{"duplicate override", plan(`{"id":"p","overrides":{"i":{"price":1},"i":{"price":2}}}`), `plans[0].overrides["i"]`},
		{"duplicate tool field", tool(`{"id":"i","unit":"image","price":7,"price":1}`), "tools[0].price"},
		{"duplicate tools array", doc(tools + `,"tools":[]`), "tools"},

		// Negative, zero and out-of-range amounts.
		{"negative price", tool(`{"id":"i","unit":"image","price":-7}`), "tools[0].price"},
		{"negative price as a string", tool(`{"id":"i","unit":"image","price":"-0.001"}`), "tools[0].price"},
		{"zero price", tool(`{"id":"i","unit":"image","price":0}`), "tools[0].price"},
		{"negative zero price", tool(`{"id":"i","unit":"image","price":-0}`), "tools[0].price"},
		{"negative rate", tool(`{"id":"v","unit":"second","rates":{"720p":-8}}`), `tools[0].rates["720p"]`},
		{"zero rate", tool(`{"id":"v","unit":"second","rates":{"720p":"0"}}`), `tools[0].rates["720p"]`},
		{"negative override", plan(`{"id":"p","overrides":{"i":{"price":-1}}}`), `plans[0].overrides["i"].price`},
		{"negative override rate", plan(`{"id":"p","overrides":{"v":{"rates":{"720p":-1}}}}`), `plans[0].overrides["v"].rates["720p"]`},
		{"price above the limit", tool(`{"id":"i","unit":"image","price":1000000.001}`), "tools[0].price"},
		{"rate above the limit", tool(`{"id":"v","unit":"second","rates":{"720p":"1000001"}}`), `tools[0].rates["720p"]`},
		{"price MaxInt64 millicredits", tool(`{"id":"i","unit":"image","price":9223372036854775.807}`), "tools[0].price"},
		{"price overflowing int64", tool(`{"id":"i","unit":"image","price":9223372036854775.808}`), "tools[0].price"},
		{"price overflowing int64, negative", tool(`{"id":"i","unit":"image","price":-9223372036854775.809}`), "tools[0].price"},
		{"price of 20 digits", tool(`{"id":"i","unit":"image","price":99999999999999999999}`), "tools[0].price"},
		{"override above the limit", plan(`{"id":"p","overrides":{"i":{"price":"1e7"}}}`), `plans[0].overrides["i"].price`},

		// NaN, infinities and absurd exponents.
		{"NaN literal", tool(`{"id":"i","unit":"image","price":NaN}`), ""},
		{"NaN string", tool(`{"id":"i","unit":"image","price":"NaN"}`), "tools[0].price"},
		{"Infinity literal", tool(`{"id":"i","unit":"image","price":Infinity}`), ""},
		{"Infinity string", tool(`{"id":"i","unit":"image","price":"Infinity"}`), "tools[0].price"},
		{"-Infinity string", tool(`{"id":"i","unit":"image","price":"-Infinity"}`), "tools[0].price"},
		{"inf string", tool(`{"id":"i","unit":"image","price":"inf"}`), "tools[0].price"},
		{"1e400", tool(`{"id":"i","unit":"image","price":1e400}`), "tools[0].price"},
		{"1e400 string", tool(`{"id":"i","unit":"image","price":"1e400"}`), "tools[0].price"},
		{"-1e400", tool(`{"id":"i","unit":"image","price":-1e400}`), "tools[0].price"},
		{"1e-400", tool(`{"id":"i","unit":"image","price":1e-400}`), "tools[0].price"},
		{"exponent of 10 digits", tool(`{"id":"i","unit":"image","price":1e1000000000}`), "tools[0].price"},
		{"hexadecimal price", tool(`{"id":"i","unit":"image","price":"0x10"}`), "tools[0].price"},
		{"price with a space", tool(`{"id":"i","unit":"image","price":" 7"}`), "tools[0].price"},
		{"price with an underscore", tool(`{"id":"i","unit":"image","price":"1_000"}`), "tools[0].price"},
		{"empty price string", tool(`{"id":"i","unit":"image","price":""}`), "tools[0].price"},
		{"price of 65 digits", tool(`{"id":"i","unit":"image","price":"` + strings.Repeat("0", 64) + `1"}`), "tools[0].price"},
		{"NaN discount", plan(`{"id":"p","discount_bp":NaN}`), ""},
		{"1e400 discount", plan(`{"id":"p","discount_bp":1e400}`), "plans[0].discount_bp"},
		{"1e400 quote TTL", doc(`"quote_ttl_ms":1e400,` + tools), "quote_ttl_ms"},

		// Integers out of range.
		{"discount above 100 %", plan(`{"id":"p","discount_bp":10001}`), "plans[0].discount_bp"},
		{"negative discount", plan(`{"id":"p","discount_bp":-1}`), "plans[0].discount_bp"},
		{"discount MaxInt64", plan(`{"id":"p","discount_bp":9223372036854775807}`), "plans[0].discount_bp"},
		{"discount overflowing int64", plan(`{"id":"p","discount_bp":9223372036854775808}`), "plans[0].discount_bp"},
		{"fractional discount", plan(`{"id":"p","discount_bp":100.5}`), "plans[0].discount_bp"},

		// Allowances.
		{"allowance without amount", plan(`{"id":"p","allowance":{"period":"month"}}`), "plans[0].allowance.amount"},
		{"zero allowance", plan(`{"id":"p","allowance":{"amount":0,"period":"month"}}`), "plans[0].allowance.amount"},
		{"negative allowance", plan(`{"id":"p","allowance":{"amount":-5,"period":"month"}}`), "plans[0].allowance.amount"},
		{"allowance above the limit", plan(`{"id":"p","allowance":{"amount":"1000000000.001","period":"month"}}`), "plans[0].allowance.amount"},
		{"allowance overflowing int64", plan(`{"id":"p","allowance":{"amount":9223372036854775.808,"period":"month"}}`), "plans[0].allowance.amount"},
		{"allowance without period", plan(`{"id":"p","allowance":{"amount":5}}`), "plans[0].allowance.period"},
		{"allowance of an unknown period", plan(`{"id":"p","allowance":{"amount":5,"period":"year"}}`), "plans[0].allowance.period"},
		{"allowance period of zero", plan(`{"id":"p","allowance":{"amount":5,"period":0}}`), "plans[0].allowance.period"},
		{"negative rollover", plan(`{"id":"p","allowance":{"amount":5,"period":"day","rollover_max":-1}}`), "plans[0].allowance.rollover_max"},
		{"rollover above the amount", plan(`{"id":"p","allowance":{"amount":5,"period":"day","rollover_max":5.001}}`), "plans[0].allowance.rollover_max"},
		{"unknown allowance field", plan(`{"id":"p","allowance":{"amount":5,"period":"day","every":2}}`), "plans[0].allowance.every"},
		{"allowance not an object", plan(`{"id":"p","allowance":5}`), "plans[0].allowance"},
		{"negative quote TTL", doc(`"quote_ttl_ms":-1,` + tools), "quote_ttl_ms"},
		{"quote TTL above a day", doc(`"quote_ttl_ms":86400001,` + tools), "quote_ttl_ms"},
		{"quote TTL overflowing int64", doc(`"quote_ttl_ms":9223372036854775808,` + tools), "quote_ttl_ms"},
		{"negative increment", tool(`{"id":"v","unit":"second","rates":{"p":1},"increment_ms":-1}`), "tools[0].increment_ms"},
		{"increment above a minute", tool(`{"id":"v","unit":"second","rates":{"p":1},"increment_ms":60001}`), "tools[0].increment_ms"},
		{"negative max duration", tool(`{"id":"v","unit":"second","rates":{"p":1},"max_duration_ms":-1}`), "tools[0].max_duration_ms"},
		{"max duration above a day", tool(`{"id":"v","unit":"second","rates":{"p":1},"max_duration_ms":86400001}`), "tools[0].max_duration_ms"},
		{"max duration MaxInt64", tool(`{"id":"v","unit":"second","rates":{"p":1},"max_duration_ms":9223372036854775807}`), "tools[0].max_duration_ms"},
		{"negative max images", tool(`{"id":"i","unit":"image","price":1,"max_images":-1}`), "tools[0].max_images"},
		{"max images above 1000", tool(`{"id":"i","unit":"image","price":1,"max_images":1001}`), "tools[0].max_images"},
		{"max images overflowing int", tool(`{"id":"i","unit":"image","price":1,"max_images":99999999999999999999}`), "tools[0].max_images"},

		// Contradictions.
		{"max duration shorter than the increment", tool(`{"id":"v","unit":"second","rates":{"p":1},"increment_ms":2000,"max_duration_ms":1000}`), "tools[0].max_duration_ms"},
		{"image tool with rates", tool(`{"id":"i","unit":"image","price":1,"rates":{"720p":1}}`), "tools[0].rates"},
		{"image tool with an increment", tool(`{"id":"i","unit":"image","price":1,"increment_ms":1000}`), "tools[0].increment_ms"},
		{"image tool with a rounding", tool(`{"id":"i","unit":"image","price":1,"rounding":"up"}`), "tools[0].rounding"},
		{"image tool with a max duration", tool(`{"id":"i","unit":"image","price":1,"max_duration_ms":1000}`), "tools[0].max_duration_ms"},
		{"image tool without a price", tool(`{"id":"i","unit":"image"}`), "tools[0].price"},
		{"per-second tool with a price", tool(`{"id":"v","unit":"second","price":1,"rates":{"p":1}}`), "tools[0].price"},
		{"per-second tool with max images", tool(`{"id":"v","unit":"second","rates":{"p":1},"max_images":2}`), "tools[0].max_images"},
		{"per-second tool without rates", tool(`{"id":"v","unit":"second"}`), "tools[0].rates"},
		{"per-second tool with empty rates", tool(`{"id":"v","unit":"second","rates":{}}`), "tools[0].rates"},
		{"unknown unit", tool(`{"id":"v","unit":"minute","rates":{"p":1}}`), "tools[0].unit"},
		{"missing unit", tool(`{"id":"i","price":1}`), "tools[0].unit"},
		{"unit in another case", tool(`{"id":"i","unit":"Image","price":1}`), "tools[0].unit"},
		{"unknown rounding", tool(`{"id":"v","unit":"second","rates":{"p":1},"rounding":"sideways"}`), "tools[0].rounding"},
		{"override of a resolution the tool lacks", plan(`{"id":"p","overrides":{"v":{"rates":{"1080p":10}}}}`), `plans[0].overrides["v"].rates["1080p"]`},
		{"override of a resolution in another case", plan(`{"id":"p","overrides":{"v":{"rates":{"720P":10}}}}`), `plans[0].overrides["v"].rates["720P"]`},
		{"override of an unknown tool", plan(`{"id":"p","overrides":{"hologram":{"price":1}}}`), `plans[0].overrides["hologram"]`},
		{"price override of a per-second tool", plan(`{"id":"p","overrides":{"v":{"price":1}}}`), `plans[0].overrides["v"].price`},
		{"rates override of an image tool", plan(`{"id":"p","overrides":{"i":{"rates":{"720p":1}}}}`), `plans[0].overrides["i"].rates`},
		{"empty override", plan(`{"id":"p","overrides":{"i":{}}}`), `plans[0].overrides["i"].price`},
		{"empty rates override", plan(`{"id":"p","overrides":{"v":{"rates":{}}}}`), `plans[0].overrides["v"].rates`},

		// Names and IDs.
		{"missing tool ID", tool(`{"unit":"image","price":1}`), "tools[0].id"},
		{"tool ID in upper case", tool(`{"id":"Image","unit":"image","price":1}`), "tools[0].id"},
		{"tool ID with SQL", tool(`{"id":"i'; DROP TABLE credits_accounts; --","unit":"image","price":1}`), "tools[0].id"},
		{"tool ID of 65 bytes", tool(`{"id":"` + strings.Repeat("i", 65) + `","unit":"image","price":1}`), "tools[0].id"},
		{"plan ID with a space", plan(`{"id":"p p"}`), "plans[0].id"},
		{"missing plan ID", plan(`{"discount_bp":10}`), "plans[0].id"},
		{"name of 129 bytes", tool(`{"id":"i","name":"` + strings.Repeat("n", 129) + `","unit":"image","price":1}`), "tools[0].name"},
		{"empty resolution", tool(`{"id":"v","unit":"second","rates":{"":1}}`), `tools[0].rates[""]`},
		{"resolution of 33 bytes", tool(`{"id":"v","unit":"second","rates":{"` + strings.Repeat("r", 33) + `":1}}`), ""},
		{"resolution with NUL", tool(`{"id":"v","unit":"second","rates":{"720p\u0000":1}}`), ""},
		{"resolution with a newline", tool(`{"id":"v","unit":"second","rates":{"720p\n":1}}`), ""},
		{"missing version", `{` + tools + `}`, "version"},
		{"empty version", `{"version":"",` + tools + `}`, "version"},
		{"version with a space", `{"version":"v 1",` + tools + `}`, "version"},
		{"version of 65 bytes", `{"version":"` + strings.Repeat("v", 65) + `",` + tools + `}`, "version"},
		{"version not ASCII", `{"version":"v😀",` + tools + `}`, "version"},

		// Unknown fields.
		{"unknown root field", doc(tools + `,"currency":"EUR"`), "currency"},
		{"unknown tool field", tool(`{"id":"i","unit":"image","price":1,"cost":1}`), "tools[0].cost"},
		{"tool field in another case", tool(`{"id":"i","unit":"image","Price":1}`), "tools[0].Price"},
		{"unknown plan field", plan(`{"id":"p","discount_percent":10}`), "plans[0].discount_percent"},
		{"unknown override field", plan(`{"id":"p","overrides":{"i":{"price":1,"discount_bp":10}}}`), `plans[0].overrides["i"].discount_bp`},
		{"field named with SQL", doc(tools + `,"'; DROP TABLE x; --":1`), "'; DROP TABLE x; --"},

		// Wrong types.
		{"version as a number", `{"version":1,` + tools + `}`, "version"},
		{"version as an object", `{"version":{},` + tools + `}`, "version"},
		{"tools as a string", doc(`"tools":"all"`), "tools"},
		{"tools as an object", doc(`"tools":{"i":` + img + `}`), "tools"},
		{"tool as an array", doc(`"tools":[[]]`), "tools[0]"},
		{"tool as a string", doc(`"tools":["image"]`), "tools[0]"},
		{"tool as null then a number", doc(`"tools":[null,1]`), ""},
		{"unit as a number", tool(`{"id":"i","unit":1,"price":1}`), "tools[0].unit"},
		{"price as an object", tool(`{"id":"i","unit":"image","price":{"amount":1}}`), "tools[0].price"},
		{"price as an array", tool(`{"id":"i","unit":"image","price":[1]}`), "tools[0].price"},
		{"rates as a string", tool(`{"id":"v","unit":"second","rates":"720p=8"}`), "tools[0].rates"},
		{"rate as a boolean", tool(`{"id":"v","unit":"second","rates":{"720p":true}}`), `tools[0].rates["720p"]`},
		{"discount as a string", plan(`{"id":"p","discount_bp":"10"}`), "plans[0].discount_bp"},
		{"overrides as an array", plan(`{"id":"p","overrides":[]}`), "plans[0].overrides"},
		{"max images as a boolean", tool(`{"id":"i","unit":"image","price":1,"max_images":true}`), "tools[0].max_images"},
		{"plans as an object", doc(tools + `,"plans":{}`), "plans"},

		// Truncated, empty and malformed documents.
		{"empty", ``, "(root)"},
		{"whitespace", " \n\t ", "(root)"},
		{"empty object", `{}`, "version"},
		{"open brace", `{`, ""},
		{"truncated key", `{"vers`, ""},
		{"truncated after a key", `{"version"`, ""},
		{"truncated after a colon", `{"version":`, ""},
		{"truncated after the version", `{"version":"v"`, ""},
		{"truncated in a tool", `{"version":"v","tools":[{"id":"i","unit":"image","price":`, ""},
		{"truncated in a number", `{"version":"v","tools":[{"id":"i","unit":"image","price":1.`, ""},
		{"truncated in a string", `{"version":"v","tools":[{"id":"i`, ""},
		{"missing comma", `{"version":"v" "tools":[]}`, ""},
		{"single quotes", `{'version':'v','tools':[]}`, ""},
		{"comment", `{"version":"v", /* prices */ "tools":[]}`, ""},
		{"trailing comma in tools", doc(`"tools":[` + img + `,]`), ""},
		{"two documents", doc(tools) + doc(tools), "(root)"},
		{"byte order mark", "\ufeff" + doc(tools), "(root)"},
		{"NUL after the document", doc(tools) + "\x00", "(root)"},
		{"invalid UTF-8 outside strings", `{"version":"v",` + "\xff" + tools + `}`, ""},
		{"root is a number", `7`, "(root)"},
		{"root is true", `true`, "(root)"},
		{"deeply nested arrays", doc(`"tools":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000)), "tools[0]"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		if seen[tt.name] {
			t.Fatalf("duplicate case name %q", tt.name)
		}
		seen[tt.name] = true
		c, err := credits.ParseCatalog([]byte(tt.json))
		if !errors.Is(err, credits.ErrInvalidCatalog) || c != nil {
			t.Errorf("%s: ParseCatalog = %v, %v; want ErrInvalidCatalog and no catalog", tt.name, c, err)
			continue
		}
		var ce *credits.CatalogError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v is not a *CatalogError", tt.name, err)
			continue
		}
		if ce.Field == "" {
			t.Errorf("%s: the error names no field: %v", tt.name, err)
		}
		if tt.field != "" && ce.Field != tt.field {
			t.Errorf("%s: Field = %q, want %q (%v)", tt.name, ce.Field, tt.field, err)
		}
		if !utf8.ValidString(err.Error()) {
			t.Errorf("%s: the error message is not valid UTF-8: %q", tt.name, err)
		}
	}
	t.Logf("%d malformed or contradictory catalogs refused", len(tests))
}

// TestCatalogJSONStringsStayValid: invalid UTF-8 inside a JSON string is
// either refused or read as valid UTF-8 (encoding/json's U+FFFD); it never
// reaches a quote, and so a store, as invalid UTF-8.
func TestCatalogJSONStringsStayValid(t *testing.T) {
	for _, doc := range []string{
		`{"version":"v","tools":[{"id":"v","name":"n` + "\xff" + `","unit":"second","rates":{"720p":1}}]}`,
		`{"version":"v","tools":[{"id":"v","unit":"second","rates":{"72` + "\xff" + `0p":1}}]}`,
		`{"version":"v","tools":[{"id":"v","unit":"second","rates":{"\ud800":1}}]}`,
	} {
		c, err := credits.ParseCatalog([]byte(doc))
		if err != nil {
			if !errors.Is(err, credits.ErrInvalidCatalog) {
				t.Errorf("ParseCatalog(%q): %v, want ErrInvalidCatalog", doc, err)
			}
			continue
		}
		for _, tool := range c.Tools() {
			if !utf8.ValidString(tool.Name) {
				t.Errorf("ParseCatalog(%q): tool name %q", doc, tool.Name)
			}
			for res := range tool.Rates {
				if !utf8.ValidString(res) {
					t.Errorf("ParseCatalog(%q): resolution %q", doc, res)
				}
			}
		}
	}
}
