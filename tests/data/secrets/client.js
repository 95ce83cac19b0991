// Clients for the chat backend.
const { OpenAI } = require("openai");
const { WebClient } = require("@slack/web-api");
const { Octokit } = require("@octokit/rest");
const mongoose = require("mongoose");

const openai = new OpenAI({ apiKey: "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" });
const slack = new WebClient("xoxb-036562270171-3198685407184-hrSJnVZS9DfTurjWFcbCYcC5");
const octokit = new Octokit({ auth: "ghp_Vw7GByYGKDHnDYESHWlyStEqjGaDnCj8qYsv" });

const MONGO_URL = "mongodb+srv://chat_app:2fVeXQzsCpah4Wh4@cluster0.abcde.mongodb.net/chat?retryWrites=true";

async function connect() {
  await mongoose.connect(MONGO_URL);
}

const legacyKey = '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';

async function whoami() {
  const res = await fetch("https://api.internal/me", {
    headers: { Authorization: "Bearer eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAic3ZjLWNlZDEwZjE4IiwgInJvbGUiOiAiYWRtaW4iLCAiaWF0IjogMTcxODAwMDAwMH0.X5Dbg8ThrauZmCvg-xRbx0AoJ2eD0iEX4IFL3bm5Ddq" },
  });
  return res.json();
}

module.exports = { openai, slack, octokit, connect, whoami, legacyKey };
