# ruby-puma: a Rack app served by puma; the greeting comes from a gem with a C extension compiled at build time.
require "json"
require "gp_greeting"

run lambda { |_env|
  body = JSON.generate(app: "ruby-puma", greeting: GpGreeting.greeting("GoldenPath"), ruby: RUBY_VERSION)
  [200, { "content-type" => "application/json" }, [body]]
}
