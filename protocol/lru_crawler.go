package protocol

import (
	"bytes"
	"strconv"
)

// lru_crawler, as memcached 1.6.18 parses it (proto_text.c,
// process_lru_crawler_command; crawler.c, lru_crawler_crawl):
//
//	lru_crawler metadump <all|hash|<id>[,<id>...]>   stream every item's metadata, then END
//	lru_crawler crawl <all|<id>[,<id>...]>           reclaim expired items
//	lru_crawler tocrawl <n> | sleep <usec>           crawler settings
//	lru_crawler enable | disable                     start or stop the crawler thread
//
// Any other shape, noreply included, is ERROR. A class list is split on
// commas (empty pieces are skipped, as strtok skips them); each piece is a
// number as safe_strtoul reads it and must name a slab class, 1 to
// MaxSlabClass, or the command is BADCLASS. A list without any id is
// NOTSTARTED; memcached 1.6.18 then keeps the metadump's client slot taken,
// and every later metadump on that server fails with "ERROR an unknown
// error happened" until it restarts, which is one more reason such a line
// is answered here and never forwarded.

// MaxSlabClass is the highest slab class id memcached has
// (MAX_NUMBER_OF_SLAB_CLASSES - 1).
const MaxSlabClass = 63

// CrawlerSub is the subcommand of an lru_crawler command.
type CrawlerSub uint8

// The lru_crawler subcommands.
const (
	CrawlerNone CrawlerSub = iota
	CrawlerMetadump
	CrawlerCrawl
	CrawlerTocrawl
	CrawlerSleep
	CrawlerEnable
	CrawlerDisable
)

var crawlerSubNames = [...]string{
	CrawlerNone: "", CrawlerMetadump: "metadump", CrawlerCrawl: "crawl", CrawlerTocrawl: "tocrawl",
	CrawlerSleep: "sleep", CrawlerEnable: "enable", CrawlerDisable: "disable",
}

// String returns the subcommand as the client writes it.
func (c CrawlerSub) String() string {
	if int(c) < len(crawlerSubNames) {
		return crawlerSubNames[c]
	}
	return "unknown"
}

// CrawlerRequest is what an lru_crawler command asks (Request.Crawler).
type CrawlerRequest struct {
	Sub CrawlerSub
	// The target of metadump and crawl: every class (All), the hash table
	// (Hash, metadump only), or the classes whose bits are set in Classes
	// (bit i for class i).
	All, Hash bool
	Classes   uint64
	// N is the number of tocrawl and sleep.
	N uint32
}

// parseLruCrawler parses an lru_crawler line; n counts a terminating empty
// token, as memcached's ntokens does.
func parseLruCrawler(req *Request, toks [][]byte, n int) error {
	c := &req.Crawler
	var sub string
	if len(toks) > 1 {
		sub = string(toks[1])
	}
	switch {
	case n == 4 && (sub == "metadump" || sub == "crawl"):
		c.Sub = CrawlerMetadump
		if sub == "crawl" {
			c.Sub = CrawlerCrawl
		}
		if err := parseCrawlTarget(c, toks[2]); err != nil {
			return err
		}
	case n == 4 && (sub == "tocrawl" || sub == "sleep"):
		v, ok := parseUint32(toks[2])
		if !ok {
			return ErrBadFormat
		}
		c.Sub, c.N = CrawlerTocrawl, v
		if sub == "sleep" {
			if v > 1000000 {
				return ErrCrawlerSleep
			}
			c.Sub = CrawlerSleep
		}
	case n == 3 && sub == "enable":
		c.Sub = CrawlerEnable
	case n == 3 && sub == "disable":
		c.Sub = CrawlerDisable
	default:
		return ErrUnknownCommand
	}
	req.Op = OpLruCrawler
	return nil
}

// parseCrawlTarget reads "all", "hash" or a class list into c.
func parseCrawlTarget(c *CrawlerRequest, tok []byte) error {
	switch string(tok) {
	case "all":
		c.All = true
		return nil
	case "hash":
		// memcached walks the hash table for a metadump; a crawl of it
		// fails later, at its start, which is the caller's to refuse.
		c.Hash = true
		return nil
	}
	for len(tok) > 0 {
		piece := tok
		if i := bytes.IndexByte(tok, ','); i >= 0 {
			piece, tok = tok[:i], tok[i+1:]
		} else {
			tok = nil
		}
		if len(piece) == 0 {
			continue
		}
		id, ok := parseUint32(piece)
		if !ok || id < 1 || id > MaxSlabClass {
			return ErrCrawlerBadClass
		}
		c.Classes |= 1 << id
	}
	if c.Classes == 0 {
		return ErrCrawlerNotStarted
	}
	return nil
}

// AppendCrawlTarget appends c's target as memcached reads it: "all",
// "hash", or its classes in ascending order, comma-separated.
func AppendCrawlTarget(dst []byte, c *CrawlerRequest) []byte {
	switch {
	case c.All:
		return append(dst, "all"...)
	case c.Hash:
		return append(dst, "hash"...)
	}
	first := true
	for id := 1; id <= MaxSlabClass; id++ {
		if c.Classes&(1<<id) == 0 {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = strconv.AppendInt(dst, int64(id), 10)
	}
	return dst
}

// AppendMetadump appends "lru_crawler metadump <target>\r\n", the canonical
// line of a metadump request.
func AppendMetadump(dst []byte, c *CrawlerRequest) []byte {
	dst = append(dst, "lru_crawler metadump "...)
	dst = AppendCrawlTarget(dst, c)
	return append(dst, crlf...)
}
