<?php
// Writes keys through php-memcached with OPT_LIBKETAMA_COMPATIBLE, so that
// libmemcached's weighted ketama places them (ring/compat_clients_test.go).
// Usage: php libketama.php KEYFILE HOST:PORT:WEIGHT...
// KEYFILE holds one hex-encoded key a line. Prints "stored N".
$args = array_slice($argv, 1);
$keyfile = array_shift($args);
$m = new Memcached();
$m->setOption(Memcached::OPT_LIBKETAMA_COMPATIBLE, true);
// The binary protocol, because in text mode php-memcached refuses keys
// with bytes above 0x7f, which the placement must handle too.
$m->setOption(Memcached::OPT_BINARY_PROTOCOL, true);
$m->setOption(Memcached::OPT_COMPRESSION, false);
foreach ($args as $s) {
    [$host, $port, $weight] = explode(":", $s);
    if (!$m->addServer($host, (int)$port, (int)$weight)) {
        fwrite(STDERR, "addServer $s: " . $m->getResultMessage() . "\n");
        exit(1);
    }
}
$n = 0;
foreach (file($keyfile, FILE_IGNORE_NEW_LINES) as $hex) {
    $key = hex2bin($hex);
    if (!$m->set($key, "v")) {
        fwrite(STDERR, "set " . bin2hex($key) . ": " . $m->getResultMessage() . "\n");
        exit(1);
    }
    $n++;
}
echo "stored $n\n";
