module rebond/bench/loadgen

go 1.22
