// Package childproxy is the tests' side of mcproxy as a child process,
// built from cmd/mcproxy (BuildT) and treated as a black box: the signal,
// drain and admin tests of cmd/mcproxy and the deployment checks of
// test/deploytest start it (StartT), the tool tests take its binary
// (ClusterTestBinary), and VerifyTestMain checks for leaked goroutines and
// removes the build. The processes themselves are run by
// internal/tools/mcproxyproc; the in-process proxy of the tests under test/
// is internal/testkit/inprocproxy.
package childproxy
