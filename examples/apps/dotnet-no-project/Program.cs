// C# code with no project file next to it: `dotnet publish` cannot build this, so detection refuses it.
var builder = WebApplication.CreateBuilder(args);
var app = builder.Build();
app.MapGet("/", () => Results.Json(new { app = "dotnet-no-project" }));
app.Run();
