#!/usr/bin/perl
# Drive memcached through two Perl client libraries and print a transcript.
# Run against memcached and against mcproxy, the transcripts must be
# identical. Usage: clients.pl HOST PORT
use strict;
use warnings;
use Cache::Memcached;
use Cache::Memcached::Fast;

my ($host, $port) = @ARGV;
my $addr = "$host:$port";
sub out { print join(" ", map { defined $_ ? $_ : "undef" } @_), "\n" }

# --- Cache::Memcached ---
my $m = Cache::Memcached->new({ servers => [$addr] });
out("cm flush", $m->flush_all ? 1 : 0);
out("cm set/get", $m->set("pl:a", "hello") ? 1 : 0, $m->get("pl:a"));
out("cm add", $m->add("pl:a", "x") ? 1 : 0, $m->add("pl:b", "y") ? 1 : 0);
out("cm replace", $m->replace("pl:b", "z") ? 1 : 0, $m->replace("pl:none", "z") ? 1 : 0);
out("cm incr/decr", $m->set("pl:n", 10) ? 1 : 0, $m->incr("pl:n", 5), $m->decr("pl:n", 100), $m->incr("pl:missing"));
my %h = map { ("pl:m$_" => "v$_") } 0 .. 199;
$m->set($_, $h{$_}) for sort keys %h;
my $g = $m->get_multi(keys %h, "pl:absent");
out("cm get_multi", scalar(keys %$g), (grep { $g->{$_} ne $h{$_} } keys %h) ? "bad" : "ok");
out("cm ref", $m->set("pl:ref", { a => [1, 2] }) ? 1 : 0, join(",", @{ $m->get("pl:ref")->{a} }));
out("cm big", $m->set("pl:big", "x" x 300000) ? 1 : 0, length($m->get("pl:big")));
out("cm delete", $m->delete("pl:a") ? 1 : 0, $m->delete("pl:a") ? 1 : 0);
$m->disconnect_all;

# --- Cache::Memcached::Fast ---
my $f = Cache::Memcached::Fast->new({ servers => [$addr], compress_threshold => -1 });
out("cmf set/get", $f->set("plf:a", "v"), $f->get("plf:a"));
out("cmf append/prepend", $f->append("plf:a", "w"), $f->prepend("plf:a", "u"), $f->get("plf:a"));
my $gs = $f->gets("plf:a");
out("cmf gets", defined $gs ? $$gs[1] : "undef");
out("cmf cas", $f->cas("plf:a", $$gs[0], "new") ? 1 : 0, $f->cas("plf:a", $$gs[0], "newer") ? 1 : 0, $f->get("plf:a"));
out("cmf touch", $f->touch("plf:a", 100) ? 1 : 0, $f->touch("plf:none", 100) ? 1 : 0);
my @keys = map { "plf:m$_" } 0 .. 199;
$f->set_multi(map { [$_, "val-$_"] } @keys);
my $fg = $f->get_multi(@keys, "plf:absent");
out("cmf get_multi", scalar(keys %$fg), (grep { $fg->{$_} ne "val-$_" } @keys) ? "bad" : "ok");
out("cmf incr", $f->set("plf:n", 1), $f->incr("plf:n", 41), $f->decr("plf:n", 2));
out("cmf noreply", $f->set("plf:nr", "quiet"), $f->get("plf:nr"));
out("cmf delete", $f->delete("plf:a") ? 1 : 0, $f->delete("plf:a") ? 1 : 0);
my $versions = $f->server_versions;
out("cmf versions", scalar(keys %$versions));
out("cmf flush", $f->flush_all ? 1 : 0, defined $f->get("plf:n") ? "still there" : "gone");
