from busybox as base
run echo hi
