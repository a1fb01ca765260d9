package protocol

import (
	"fmt"
	"strings"
	"testing"
)

// loopReader serves its input over and over, never ending, so a benchmark
// measures the parser in its steady state.
type loopReader struct {
	in  []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.in[l.off:])
	l.off = (l.off + n) % len(l.in)
	return n, nil
}

// BenchmarkRequestReader parses a pipelined mix of single gets, multi-gets
// and sets (100-byte values), as one client's read buffer holds them. One
// op is one command, its data block included.
func BenchmarkRequestReader(b *testing.B) {
	var in []byte
	val := strings.Repeat("v", 100)
	const rounds = 100
	for i := 0; i < rounds; i++ {
		in = fmt.Appendf(in, "get user:%d\r\n", i)
		in = fmt.Appendf(in, "get user:%d user:%d user:%d user:%d\r\n", i, i+1, i+2, i+3)
		in = fmt.Appendf(in, "set user:%d 0 3600 %d\r\n%s\r\n", i, len(val), val)
	}
	const perRound = 3
	benchRequestReader(b, in, rounds*perRound, len(val))
}

// benchRequestReader parses in, which holds commands commands whose data
// blocks are at most valLen bytes, over and over. One op is one command,
// its data block included.
func benchRequestReader(b *testing.B, in []byte, commands, valLen int) {
	rr := NewRequestReader(&loopReader{in: in}, 0)
	var req Request
	data := make([]byte, valLen+2)
	b.SetBytes(int64(len(in) / commands))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := rr.Next(&req); err != nil {
			b.Fatal(err)
		}
		if req.Op.HasData() {
			if err := rr.ReadData(data[:req.Bytes+2]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkReplyReader parses a backend's replies to that mix: a hit, a
// multi-get with two hits and two misses, STORED, and a miss. One op is one
// reply.
func BenchmarkReplyReader(b *testing.B) {
	val := strings.Repeat("v", 100)
	var in []byte
	var kinds []ReplyKind
	const rounds = 100
	for i := 0; i < rounds; i++ {
		in = fmt.Appendf(in, "VALUE user:%d 0 %d\r\n%s\r\nEND\r\n", i, len(val), val)
		in = fmt.Appendf(in, "VALUE user:%d 0 %d\r\n%s\r\nVALUE user:%d 0 %d\r\n%s\r\nEND\r\n", i, len(val), val, i+2, len(val), val)
		in = append(in, "STORED\r\n"...)
		in = append(in, "END\r\n"...)
		kinds = append(kinds, ReplyRetrieval, ReplyRetrieval, ReplyLine, ReplyRetrieval)
	}
	rr := NewReplyReader(&loopReader{in: in}, 0)
	var r Reply
	b.SetBytes(int64(len(in) / len(kinds)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := rr.ReadReply(kinds[i%len(kinds)], &r); err != nil {
			b.Fatal(err)
		}
	}
}
