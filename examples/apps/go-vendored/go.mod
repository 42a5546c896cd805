module example.com/go-vendored

go 1.26

require example.com/greeting v0.1.0
