package credits

import "context"

// NoteRequest records a note in an account's history: an outcome the
// application wants beside the ledger's own (a payment that failed, an
// operator's remark). It moves no credit.
type NoteRequest struct {
	Account string `json:"account"`
	// Note is required.
	Note string `json:"note"`
	// Key is required: a note sent twice is recorded once.
	Key string `json:"-"`
}

// NoteResult is the outcome of Annotate.
type NoteResult struct {
	// Entry is the note's entry, as recorded.
	Entry Entry `json:"entry"`
	Replay
}

// Annotate appends an [EntryNote] entry (Amount zero, the request's key
// and note) to an account's history, once per key: the feed delivers it
// like any entry.
func (l *Ledger) Annotate(ctx context.Context, req NoteRequest) (NoteResult, error) {
	if err := cmpErr(checkRef("account", req.Account), checkKey(req.Key), checkText("note", req.Note, MaxNoteLength, true)); err != nil {
		return NoteResult{}, err
	}
	op := operation{name: opNote, key: keyOf(req.Key), userKey: true, request: struct {
		Account string `json:"account"`
		Note    string `json:"note"`
	}{req.Account, req.Note}, query: Query{Account: req.Account}}
	return mutate(ctx, l, op, func(t *txn) (NoteResult, error) {
		t.entry(Entry{Type: EntryNote, Key: req.Key, Note: req.Note})
		return NoteResult{Entry: t.entries[len(t.entries)-1]}, nil
	})
}
