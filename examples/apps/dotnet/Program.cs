// A minimal ASP.NET Core app: GET / answers JSON. The buildpack starts it with ASPNETCORE_URLS set to $PORT.
var builder = WebApplication.CreateBuilder(args);
var app = builder.Build();

app.MapGet("/", () => Results.Json(new { app = "dotnet", message = "Hello from GoldenPath" }));
app.MapGet("/healthz", () => Results.Text("ok"));

app.Run();
