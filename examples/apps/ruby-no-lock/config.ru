# ruby-no-lock: a Gemfile without its Gemfile.lock, refused in `goldenpath detect` and in the build alike.
run ->(_env) { [200, { "content-type" => "text/plain" }, ["never built\n"]] }
