package protocol

import "fmt"

// ReaderState is what a RequestReader holds between two commands: the
// bytes it has read from the stream and not parsed yet, the part of a
// refused data block it has still to throw away, and whether the start of
// the stream was already found to be text. It lets another reader (in
// another process, when a connection is handed over) go on with the same
// stream exactly where this one stopped.
type ReaderState struct {
	Unparsed []byte
	Swallow  int
	Started  bool
}

// MaxUnparsed bounds ReaderState.Unparsed: a reader's buffer never holds
// more than the longest line it accepts and its CRLF, or its initial
// buffer.
const MaxUnparsed = max(MaxRetrievalLineLength+2, initialBufferSize)

// State returns the reader's state between commands, with a copy of its
// unparsed bytes. Call it only between commands: after Next returned and
// any data block was read (or DiscardData called).
func (rr *RequestReader) State() ReaderState {
	return ReaderState{
		Unparsed: append([]byte(nil), rr.buf[rr.r:rr.w]...),
		Swallow:  rr.swallow,
		Started:  rr.started,
	}
}

// Restore makes a new reader go on from st, as if it had read st.Unparsed
// itself. It refuses a state no reader could have been in.
func (rr *RequestReader) Restore(st ReaderState) error {
	if len(st.Unparsed) > MaxUnparsed {
		return fmt.Errorf("protocol: %d unparsed bytes, more than a reader holds (%d)", len(st.Unparsed), MaxUnparsed)
	}
	if st.Swallow < 0 {
		return fmt.Errorf("protocol: %d bytes of a data block to skip", st.Swallow)
	}
	if len(st.Unparsed) > len(rr.buf) {
		rr.buf = make([]byte, len(st.Unparsed))
	}
	rr.r, rr.w = 0, copy(rr.buf, st.Unparsed)
	rr.swallow, rr.started = st.Swallow, st.Started
	return nil
}
