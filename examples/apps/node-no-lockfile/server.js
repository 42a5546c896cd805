// A small Express app: GET / answers with a greeting.
const express = require("express");
const os = require("os");

const app = express();
const port = process.env.PORT || 8080;

app.get("/", (req, res) => {
  res.json({ message: "Hello from GoldenPath", app: "node-express", host: os.hostname() });
});
app.get("/healthz", (req, res) => res.send("ok"));

app.listen(port, () => console.log(`listening on ${port}`));
