"""A small FastAPI app: GET / answers with a greeting."""
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def index() -> dict[str, str]:
    return {"message": "Hello from GoldenPath", "app": "python-fastapi"}


@app.get("/healthz")
def health() -> str:
    return "ok"
