<?php
// Drive memcached through PHP's memcached extension (libmemcached) and print
// a transcript. Run against memcached and against mcproxy, the transcripts
// must be identical. Usage: php clients.php HOST PORT
[$self, $host, $port] = $argv;
function out(...$a) { echo implode(" ", array_map(fn($x) => var_export($x, true), $a)), "\n"; }

$m = new Memcached();
$m->setOption(Memcached::OPT_BINARY_PROTOCOL, false);
$m->setOption(Memcached::OPT_COMPRESSION, false);
$m->addServer($host, (int)$port);

out("flush", $m->flush());
out("set/get", $m->set("php:a", "hello"), $m->get("php:a"));
out("int", $m->set("php:i", 42), $m->get("php:i"));
out("array", $m->set("php:arr", [1, 2, "x"]), $m->get("php:arr"));
out("add", $m->add("php:a", "x"), $m->getResultCode(), $m->add("php:b", "y"));
out("replace", $m->replace("php:b", "z"), $m->replace("php:none", "z"));
out("append/prepend", $m->append("php:b", "1"), $m->prepend("php:b", "0"), $m->get("php:b"));
out("incr/decr", $m->set("php:n", "10"), $m->increment("php:n", 5), $m->decrement("php:n", 100), $m->increment("php:missing", 1));
$items = [];
for ($i = 0; $i < 200; $i++) { $items["php:m$i"] = "v$i"; }
out("setMulti", $m->setMulti($items));
$got = $m->getMulti(array_merge(array_keys($items), ["php:absent"]));
ksort($got); $want = $items; ksort($want);
out("getMulti", count($got), $got === $want);
$r = $m->get("php:a", null, Memcached::GET_EXTENDED);
out("cas", $m->cas($r["cas"], "php:a", "new"), $m->cas($r["cas"], "php:a", "newer"), $m->get("php:a"));
out("touch", $m->touch("php:a", 100), $m->touch("php:none", 100));
$big = str_repeat("0123456789", 60000);
out("big", $m->set("php:big", $big), $m->get("php:big") === $big);
out("delete", $m->delete("php:a"), $m->delete("php:a"), $m->getResultCode());
out("version", is_array($m->getVersion()));
out("stats", is_array($m->getStats()));
out("flush again", $m->flush(), $m->get("php:b"));
