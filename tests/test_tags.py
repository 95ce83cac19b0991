"""Tags queries for every language: definitions, calls, imports, summaries; the registry.

Each language has a realistic sample file (imports, a class or struct with a method, a
documented top-level function, calls) parsed with its real grammar.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import tree_sitter as ts

from tandem.context.languages import (
    LANGUAGES,
    LanguageSpec,
    language_for_path,
    language_named,
)
from tandem.context.tags import FileTags, Tag, extract_tags, node_for, summarize

PYTHON = r'''
"""Settings loading."""

import json
import os.path
from dataclasses import dataclass, field

DEFAULT_NAME = "settings.json"


@dataclass
class Settings:
    name: str
    values: dict = field(default_factory=dict)

    def get(self, key, default=None):
        return self.values.get(key, default)

    @property
    def size(self):
        return len(self.values)


# Reads the settings file, falling back to defaults.
def load(folder, defaults=None):
    """Load settings from FOLDER, merged over DEFAULTS."""
    path = os.path.join(folder, DEFAULT_NAME)
    values = dict(defaults or {})
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            values.update(json.load(handle))
    for key in list(values):
        if values[key] is None:
            del values[key]
    return Settings(DEFAULT_NAME, values)


def merge(a, b):
    return Settings(a.name, {**a.values, **b.values})
'''

JAVASCRIPT = r"""
import fs from "node:fs";
import { join, resolve } from "node:path";
const lodash = require("lodash");

const MAX_ITEMS = 100;

/**
 * Loads the config file and merges the defaults.
 */
export function loadConfig(path, defaults) {
  const text = fs.readFileSync(join(path, "config.json"), "utf8");
  const parsed = JSON.parse(text);
  const merged = lodash.merge({}, defaults, parsed);
  if (merged.items > MAX_ITEMS) {
    merged.items = MAX_ITEMS;
  }
  for (const key of Object.keys(merged)) {
    validate(key, merged[key]);
  }
  merged.root = resolve(path);
  return merged;
}

// Checks one entry.
function validate(key, value) {
  return value !== undefined;
}

const double = (x) => x * 2;

class Store extends Base {
  constructor(config) {
    super();
    this.config = config;
  }

  get(key) {
    return this.config[key] ?? double(0);
  }

  static create(path) {
    return new Store(loadConfig(path, {}));
  }
}

module.exports = { Store, loadConfig };
"""

TYPESCRIPT = r"""
import { EventEmitter } from "events";
import type { Logger } from "./logger";
import fs = require("fs");

export const DEFAULT_TIMEOUT = 30;

export interface Options {
  timeout: number;
  retry(count: number): boolean;
}

export type Handler = (event: string) => void;

enum Level { Debug, Info }

namespace Internal {
  export function helper(): number {
    return Level.Info;
  }
}

declare function external(name: string): void;
/** Fetches a resource with retries. */
export async function fetchWithRetry(url: string, options: Options): Promise<string> {
  let attempt = 0;
  while (attempt < 3) {
    attempt += 1;
    try {
      const body = await download(url, options.timeout);
      return body.trim();
    } catch (error) {
      if (!options.retry(attempt)) {
        throw error;
      }
    }
  }
  return fs.readFileSync(url, "utf8");
}

abstract class Base {
  abstract run(): void;
}

export class Client extends Base implements Options {
  timeout = DEFAULT_TIMEOUT;
  private emitter: EventEmitter = new EventEmitter();

  constructor(private logger: Logger) {
    super();
  }

  retry(count: number): boolean {
    return count < 3;
  }

  run(): void {
    this.logger.info(fetchWithRetry("x", this));
  }
}
"""

TSX = r"""
import React, { useState } from "react";
import { Button } from "./Button";
import type { Todo } from "./types";

interface ListProps {
  todos: Todo[];
  onToggle(id: number): void;
}

type Filter = "all" | "done";

const PAGE_SIZE = 20;

/**
 * Renders the visible todos with a filter toggle.
 */
export function TodoList({ todos, onToggle }: ListProps) {
  const [filter, setFilter] = useState<Filter>("all");
  const visible = todos.filter((todo) => filter === "all" || todo.done);
  const page = visible.slice(0, PAGE_SIZE);
  return (
    <ul>
      {page.map((todo) => (
        <li key={todo.id} onClick={() => onToggle(todo.id)}>
          {formatTitle(todo)}
        </li>
      ))}
      <Button label="toggle" onClick={() => setFilter(filter === "all" ? "done" : "all")} />
    </ul>
  );
}

export const formatTitle = (todo: Todo): string => todo.title.trim();

export class TodoStore {
  private items: Todo[] = [];

  add(todo: Todo): void {
    this.items.push(todo);
  }
}
"""

GO = r"""
package store

import (
    "errors"
    "fmt"
)

import "strings"

const MaxItems = 100

var ErrMissing = errors.New("missing")

// Item is one stored value.
type Item struct {
    Key   string
    Value string
}

type Getter interface {
    Lookup(key string) (Item, error)
}

type ID = string

// Store keeps items in memory.
type Store struct {
    items map[string]Item
}

// Get returns the item for key.
func (s *Store) Get(key string) (Item, error) {
    item, ok := s.items[strings.ToLower(key)]
    if !ok {
        return Item{}, ErrMissing
    }
    return item, nil
}

// NewStore builds a store from pairs,
// skipping empty keys.
func NewStore(pairs map[string]string) *Store {
    s := &Store{items: make(map[string]Item)}
    for k, v := range pairs {
        if k == "" {
            continue
        }
        s.items[k] = Item{Key: k, Value: v}
    }
    fmt.Println(len(s.items))
    return s
}
"""

RUST = r"""
use std::collections::HashMap;
use std::fmt::{self, Display};

mod parser;
mod util {
    pub fn clamp(x: i32) -> i32 {
        x.max(0)
    }
}

pub const MAX_DEPTH: usize = 8;
static GREETING: &str = "hi";

/// A named value.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub value: i32,
}

pub enum Kind {
    Leaf,
    Node(Vec<Entry>),
}

pub trait Visitor {
    fn visit(&mut self, entry: &Entry);
}

type Table = HashMap<String, Entry>;

impl Entry {
    /// Makes an entry, clamping the value.
    pub fn new(name: &str, value: i32) -> Self {
        let value = util::clamp(value);
        let name = name.to_string();
        if name.is_empty() {
            panic!("empty name");
        }
        println!("{}", name);
        Entry { name, value }
    }
}

impl Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

macro_rules! entry {
    ($n:expr) => { Entry::new($n, 0) };
}

fn build(names: &[&str]) -> Table {
    names.iter().map(|n| (n.to_string(), Entry::new(n, 1))).collect()
}
"""

JAVA = r"""
package com.example.store;

import java.util.HashMap;
import java.util.Map;
import static java.util.Objects.requireNonNull;

/** Something that can be looked up. */
interface Lookup {
    String find(String key);
}

enum Mode { READ, WRITE }

record Pair(String key, String value) {}

/**
 * An in-memory store.
 */
public class Store implements Lookup {
    public static final int MAX_SIZE = 100;
    private final Map<String, String> items = new HashMap<>();

    public Store() {
        this.items.clear();
    }

    /** Finds a value, or null. */
    @Override
    public String find(String key) {
        return items.get(requireNonNull(key));
    }

    /**
     * Adds every pair, checking the size limit.
     */
    public void addAll(Iterable<Pair> pairs) {
        for (Pair pair : pairs) {
            if (items.size() >= MAX_SIZE) {
                throw new IllegalStateException("full");
            }
            items.put(pair.key(), pair.value());
        }
        log("added");
    }

    private static void log(String message) {
        System.out.println(message);
    }
}
"""

C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "buffer.h"

#define BUFFER_MAX 4096
#define MIN(a, b) ((a) < (b) ? (a) : (b))

typedef struct buffer {
    char *data;
    size_t len;
} buffer_t;

enum mode { MODE_READ, MODE_WRITE };

union value {
    int i;
    double d;
};

static int buffer_grow(buffer_t *buf, size_t extra);

/* Appends bytes to the buffer, growing it when needed. */
int buffer_append(buffer_t *buf, const char *bytes, size_t n)
{
    if (buf == NULL || bytes == NULL) {
        return -1;
    }
    size_t want = MIN(buf->len + n, BUFFER_MAX);
    if (buffer_grow(buf, want) != 0) {
        fprintf(stderr, "grow failed\n");
        return -1;
    }
    memcpy(buf->data + buf->len, bytes, n);
    buf->len = want;
    return 0;
}

static int buffer_grow(buffer_t *buf, size_t extra)
{
    buf->data = realloc(buf->data, extra);
    return buf->data == NULL;
}

char *buffer_str(buffer_t *buf)
{
    return buf->data;
}
"""

CPP = r"""
#include <string>
#include <vector>
#include "shape.hpp"

namespace geometry {

constexpr double kPi = 3.14159;

enum class Color { Red, Green };

using Points = std::vector<double>;

struct Point {
    double x;
    double y;
};

/// A shape with an area.
class Shape {
public:
    virtual ~Shape() = default;
    virtual double area() const = 0;
    std::string name() const { return "shape"; }
};

class Circle : public Shape {
public:
    explicit Circle(double r) : radius_(r) {}
    double area() const override;

private:
    double radius_;
};

// Computes the area from the radius.
double Circle::area() const {
    double r = radius_;
    if (r < 0) {
        r = -r;
    }
    double result = kPi * r * r;
    log_area(result);
    return result;
}

template <typename T>
T total(const std::vector<T>& values) {
    T sum{};
    for (const auto& v : values) sum += v;
    return sum;
}

}  // namespace geometry

int main() {
    geometry::Circle c(2.0);
    auto shape = std::make_unique<geometry::Circle>(1.0);
    return static_cast<int>(c.area() + geometry::total<double>({1.0}));
}
"""

C_SHARP = r"""
using System;
using System.Collections.Generic;
using static System.Math;

namespace Shop.Orders
{
    public interface IRepository
    {
        Order Find(int id);
    }

    public enum Status { Open, Closed }

    public struct Money
    {
        public decimal Amount;
    }

    public record Line(string Sku, int Count);

    /// <summary>An order with lines.</summary>
    public class Order
    {
        public const int MaxLines = 50;
        private readonly List<Line> lines = new List<Line>();

        public Order(int id) { Id = id; }

        public int Id { get; set; }

        /// <summary>
        /// Adds a line, merging with an existing one.
        /// </summary>
        public void AddLine(string sku, int count)
        {
            if (lines.Count >= MaxLines)
            {
                throw new InvalidOperationException("too many lines");
            }
            var existing = lines.Find(l => l.Sku == sku);
            if (existing != null)
            {
                lines.Remove(existing);
                count += existing.Count;
            }
            lines.Add(new Line(sku, Max(count, 1)));
            Console.WriteLine(Describe());
        }

        private string Describe() => $"{Id}: {lines.Count}";
    }
}
"""

RUBY = r"""
require "json"
require_relative "store/base"

MAX_ITEMS = 100

module Store
  VERSION = "1.0"

  # Raised when a key is missing.
  class MissingKey < StandardError; end

  # An in-memory store backed by a hash.
  class Memory < Base
    attr_reader :items

    def initialize
      @items = {}
    end

    # Stores a value, trimming the store when it grows too large.
    def put(key, value)
      raise MissingKey, "empty key" if key.nil?
      @items[key] = value
      if @items.size > MAX_ITEMS
        oldest = @items.keys.first
        @items.delete(oldest)
      end
      log("put #{key}")
      value
    end

    def self.load(path)
      new.tap { |store| store.merge!(JSON.parse(File.read(path))) }
    end

    private

    def log(message)
      puts message
    end
  end
end

# Dumps a store as JSON.
def dump(store)
  JSON.generate(store.items)
end
"""

PHP = r"""
<?php

namespace App\Billing;

use App\Models\Invoice;
use Psr\Log\LoggerInterface as Logger;

require_once __DIR__ . '/helpers.php';

const DEFAULT_CURRENCY = 'EUR';

interface Payable { public function total(): float; }

trait Loggable
{
    protected function log(string $message): void { $this->logger->info($message); }
}

enum Status: string
{
    case Paid = 'paid';
}

/**
 * Bills a customer for their open invoices.
 */
class Biller implements Payable
{
    use Loggable;

    const MAX_INVOICES = 10;

    public function __construct(private Logger $logger) {}
    public function total(): float
    {
        return array_sum(array_map(fn ($i) => $i->amount, $this->open()));
    }

    /**
     * Charges every open invoice and returns the count.
     */
    public function chargeAll(array $invoices): int
    {
        $count = 0;
        foreach ($invoices as $invoice) {
            if ($count >= self::MAX_INVOICES) {
                break;
            }
            $this->log(format_amount($invoice->amount));
            $count++;
        }
        return $count;
    }
}

function make_biller(Logger $logger): Biller
{
    return new Biller($logger);
}
"""

BASH = r"""
#!/usr/bin/env bash
set -euo pipefail

source ./lib/common.sh
. "$HOME/.config/deploy.env"

readonly DEPLOY_DIR=/srv/app
RETRIES=3
export LOG_LEVEL=info

# Prints a message with a timestamp.
log() {
  echo "$(date +%T) $*"
}

# Copies the build to the server and restarts it,
# retrying when the copy fails.
deploy() {
  local host="$1"
  local attempt=0
  while (( attempt < RETRIES )); do
    if rsync -a build/ "$host:$DEPLOY_DIR"; then
      log "copied to $host"
      break
    fi
    attempt=$((attempt + 1))
    sleep 2
  done
  ssh "$host" systemctl restart app
  log "restarted $host"
}

function cleanup {
  rm -rf build
}

trap cleanup EXIT
for host in "$@"; do
  deploy "$host"
done
"""


@dataclass(frozen=True)
class Case:
    """One language's sample and what its tags must hold."""

    text: str
    definitions: set[tuple[str, str]]  # exactly these (name, category) pairs
    calls: set[str]  # among the call references
    imports: int  # import statements captured
    long: str  # a documented function longer than LONG_BODY lines
    doc: str  # in its summary: from its doc comment
    signature: str  # in its summary
    body: str  # not in its summary
    short: str  # a function of at most 12 lines: summarized whole
    types: set[str] = field(default_factory=set)  # among the type references

    @property
    def source(self) -> bytes:
        return self.text.removeprefix("\n").encode()


LONG_BODY = 5

CASES: dict[str, Case] = {
    "python": Case(
        PYTHON,
        {
            ("DEFAULT_NAME", "constant"),
            ("Settings", "class"),
            ("get", "function"),
            ("size", "function"),
            ("load", "function"),
            ("merge", "function"),
        },
        calls={"field", "get", "len", "join", "exists", "open", "update", "load", "Settings"},
        imports=3,
        long="load",
        doc="# Reads the settings file, falling back to defaults.",
        signature='def load(folder, defaults=None):\n    """Load settings from FOLDER, merged',
        body="values.update(json.load(handle))",
        short="merge",
    ),
    "javascript": Case(
        JAVASCRIPT,
        {
            ("MAX_ITEMS", "constant"),
            ("loadConfig", "function"),
            ("validate", "function"),
            ("double", "function"),
            ("Store", "class"),
            ("constructor", "method"),
            ("get", "method"),
            ("create", "method"),
        },
        calls={"readFileSync", "join", "parse", "merge", "validate", "resolve", "double", "Store"},
        imports=3,
        long="loadConfig",
        doc=" * Loads the config file and merges the defaults.",
        signature="export function loadConfig(path, defaults)",
        body="JSON.parse(text)",
        short="validate",
        types={"Base"},
    ),
    "typescript": Case(
        TYPESCRIPT,
        {
            ("DEFAULT_TIMEOUT", "constant"),
            ("Options", "interface"),
            ("retry", "method"),
            ("Handler", "type"),
            ("Level", "enum"),
            ("Internal", "module"),
            ("helper", "function"),
            ("external", "function"),
            ("fetchWithRetry", "function"),
            ("Base", "class"),
            ("run", "method"),
            ("Client", "class"),
            ("constructor", "method"),
        },
        calls={
            "download",
            "trim",
            "retry",
            "readFileSync",
            "EventEmitter",
            "info",
            "fetchWithRetry",
        },
        imports=3,
        long="fetchWithRetry",
        doc="/** Fetches a resource with retries. */",
        signature="export async function fetchWithRetry(url: string, options: Options)",
        body="await download(url, options.timeout)",
        short="helper",
        types={"Options", "Logger", "EventEmitter", "Promise", "Base"},
    ),
    "tsx": Case(
        TSX,
        {
            ("ListProps", "interface"),
            ("onToggle", "method"),
            ("Filter", "type"),
            ("PAGE_SIZE", "constant"),
            ("TodoList", "function"),
            ("formatTitle", "function"),
            ("TodoStore", "class"),
            ("add", "method"),
        },
        calls={"useState", "filter", "slice", "map", "onToggle", "formatTitle", "Button", "push"},
        imports=3,
        long="TodoList",
        doc=" * Renders the visible todos with a filter toggle.",
        signature="export function TodoList({ todos, onToggle }: ListProps)",
        body="visible.slice(0, PAGE_SIZE)",
        short="formatTitle",
        types={"ListProps", "Todo", "Filter"},
    ),
    "go": Case(
        GO,
        {
            ("MaxItems", "constant"),
            ("ErrMissing", "constant"),
            ("Item", "struct"),
            ("Getter", "interface"),
            ("Lookup", "method"),
            ("ID", "type"),
            ("Store", "struct"),
            ("Get", "method"),
            ("NewStore", "function"),
        },
        calls={"New", "ToLower", "make", "Println", "len"},
        imports=2,
        long="NewStore",
        doc="// NewStore builds a store from pairs,\n// skipping empty keys.",
        signature="func NewStore(pairs map[string]string) *Store",
        body="make(map[string]Item)",
        short="Get",
        types={"Item", "Store", "string"},
    ),
    "rust": Case(
        RUST,
        {
            ("util", "module"),
            ("clamp", "function"),
            ("MAX_DEPTH", "constant"),
            ("GREETING", "constant"),
            ("Entry", "struct"),
            ("Kind", "enum"),
            ("Visitor", "interface"),
            ("visit", "method"),
            ("Table", "type"),
            ("new", "method"),
            ("fmt", "method"),
            ("entry", "function"),
            ("build", "function"),
        },
        calls={"clamp", "to_string", "is_empty", "panic", "println", "write", "new", "map"},
        imports=3,
        long="new",
        doc="    /// Makes an entry, clamping the value.",
        signature="    pub fn new(name: &str, value: i32) -> Self",
        body="util::clamp(value)",
        short="build",
        types={"Entry", "HashMap", "Table", "Display", "Formatter"},
    ),
    "java": Case(
        JAVA,
        {
            ("Lookup", "interface"),
            ("find", "method"),
            ("Mode", "enum"),
            ("Pair", "class"),
            ("Store", "class"),
            ("MAX_SIZE", "constant"),
            ("addAll", "method"),
            ("log", "method"),
        },
        calls={"get", "requireNonNull", "size", "put", "key", "log", "println", "HashMap"},
        imports=3,
        long="addAll",
        doc="     * Adds every pair, checking the size limit.",
        signature="    public void addAll(Iterable<Pair> pairs)",
        body="items.put(pair.key(), pair.value());",
        short="log",
        types={"String", "Map", "Pair", "Iterable", "Lookup"},
    ),
    "c": Case(
        C,
        {
            ("BUFFER_MAX", "constant"),
            ("MIN", "function"),
            ("buffer", "struct"),
            ("buffer_t", "type"),
            ("mode", "enum"),
            ("value", "struct"),
            ("buffer_grow", "function"),
            ("buffer_append", "function"),
            ("buffer_str", "function"),
        },
        calls={"MIN", "buffer_grow", "fprintf", "memcpy", "realloc"},
        imports=3,
        long="buffer_append",
        doc="/* Appends bytes to the buffer, growing it when needed. */",
        signature="int buffer_append(buffer_t *buf, const char *bytes, size_t n)",
        body="memcpy(buf->data + buf->len, bytes, n);",
        short="buffer_str",
        types={"buffer_t"},
    ),
    "cpp": Case(
        CPP,
        {
            ("geometry", "module"),
            ("kPi", "constant"),
            ("Color", "enum"),
            ("Points", "type"),
            ("Point", "struct"),
            ("Shape", "class"),
            ("area", "method"),
            ("name", "method"),
            ("Circle", "class"),
            ("total", "function"),
            ("main", "function"),
        },
        calls={"log_area", "make_unique", "area", "total"},
        imports=3,
        long="area",
        doc="// Computes the area from the radius.",
        signature="double Circle::area() const",
        body="log_area(result);",
        short="total",
        types={"Shape", "Circle", "vector", "string"},
    ),
    "c_sharp": Case(
        C_SHARP,
        {
            ("Shop.Orders", "module"),
            ("IRepository", "interface"),
            ("Find", "method"),
            ("Status", "enum"),
            ("Money", "struct"),
            ("Line", "class"),
            ("Order", "class"),
            ("MaxLines", "constant"),
            ("Id", "field"),
            ("AddLine", "method"),
            ("Describe", "method"),
        },
        calls={"Find", "Remove", "Add", "Max", "WriteLine", "Describe", "Line", "List"},
        imports=3,
        long="AddLine",
        doc="        /// Adds a line, merging with an existing one.",
        signature="        public void AddLine(string sku, int count)",
        body="lines.Remove(existing);",
        short="Describe",
        types={"Order", "Line", "List"},
    ),
    "ruby": Case(
        RUBY,
        {
            ("MAX_ITEMS", "constant"),
            ("Store", "module"),
            ("VERSION", "constant"),
            ("MissingKey", "class"),
            ("Memory", "class"),
            ("initialize", "method"),
            ("put", "method"),
            ("load", "method"),
            ("log", "method"),
            ("dump", "function"),
        },
        calls={"raise", "delete", "log", "tap", "parse", "read", "puts", "generate"},
        imports=2,
        long="put",
        doc="    # Stores a value, trimming the store when it grows too large.",
        signature="    def put(key, value)",
        body="@items.delete(oldest)",
        short="dump",
        types={"Base", "JSON", "File", "StandardError"},
    ),
    "php": Case(
        PHP,
        {
            ("App\\Billing", "module"),
            ("DEFAULT_CURRENCY", "constant"),
            ("Payable", "interface"),
            ("total", "method"),
            ("Loggable", "class"),
            ("log", "method"),
            ("Status", "enum"),
            ("Biller", "class"),
            ("MAX_INVOICES", "constant"),
            ("__construct", "method"),
            ("chargeAll", "method"),
            ("make_biller", "function"),
        },
        calls={"info", "array_sum", "array_map", "open", "log", "format_amount", "Biller"},
        imports=3,
        long="chargeAll",
        doc="     * Charges every open invoice and returns the count.",
        signature="    public function chargeAll(array $invoices): int",
        body="$this->log(format_amount($invoice->amount));",
        short="make_biller",
        types={"Logger", "Biller", "Payable"},
    ),
    "bash": Case(
        BASH,
        {
            ("DEPLOY_DIR", "constant"),
            ("RETRIES", "constant"),
            ("LOG_LEVEL", "constant"),
            ("log", "function"),
            ("deploy", "function"),
            ("cleanup", "function"),
        },
        calls={"set", "echo", "date", "rsync", "log", "sleep", "ssh", "rm", "trap", "deploy"},
        imports=2,
        long="deploy",
        doc="# Copies the build to the server and restarts it,\n# retrying when the copy fails.",
        signature="deploy()",
        body="systemctl restart app",
        short="log",
    ),
}


def parse(name: str, source: bytes) -> tuple[LanguageSpec, ts.Tree, FileTags]:
    spec = language_named(name)
    assert spec is not None
    tree = spec.parser().parse(source)
    return spec, tree, extract_tags(spec, tree)


def definition(tags: FileTags, name: str) -> Tag:
    """The longest definition of NAME (a function's body rather than its prototype)."""
    found = [t for t in tags.definitions if t.name == name]
    assert found, name
    return max(found, key=lambda t: t.end_byte - t.start_byte)


def test_every_language_has_a_case():
    assert set(CASES) == {spec.name for spec in LANGUAGES}
    assert len(LANGUAGES) == 13


@pytest.mark.parametrize("name", CASES)
def test_definitions(name):
    case = CASES[name]
    source = case.source
    assert 30 <= source.count(b"\n") <= 60
    _, tree, tags = parse(name, source)
    assert {(t.name, t.category) for t in tags.definitions} == case.definitions
    assert all(t.kind == "definition" for t in tags.definitions)
    for tag in tags.definitions:
        # The tag's node can be found again, and its name lies inside it.
        node = node_for(tree, tag)
        assert node is not None
        assert (node.start_byte, node.end_byte) == (tag.start_byte, tag.end_byte)
        assert tag.start_line <= tag.line <= tag.end_line


@pytest.mark.parametrize("name", CASES)
def test_references(name):
    case = CASES[name]
    _, _, tags = parse(name, case.source)
    assert all(t.kind == "reference" for t in tags.references)
    calls = {t.name for t in tags.references if t.category == "call"}
    assert case.calls <= calls, case.calls - calls
    types = {t.name for t in tags.references if t.category == "type"}
    assert case.types <= types, case.types - types


@pytest.mark.parametrize("name", CASES)
def test_imports(name):
    case = CASES[name]
    source = case.source
    _, _, tags = parse(name, source)
    assert len(tags.imports) == case.imports
    for start, end in tags.imports:
        text = source[start:end].decode()
        assert any(
            word in text
            for word in ("import", "use", "using", "require", "include", "mod", "source", ". ")
        )
    # `require` loads a module; it is not a call worth following.
    assert "require" not in {t.name for t in tags.references if t.category == "call"}


@pytest.mark.parametrize("name", CASES)
def test_summary_of_a_long_function_is_its_doc_and_signature(name):
    case = CASES[name]
    source = case.source
    spec, tree, tags = parse(name, source)
    tag = definition(tags, case.long)
    assert tag.end_line - tag.start_line + 1 > LONG_BODY
    summary = summarize(node_for(tree, tag), source, spec, short_body=LONG_BODY)
    assert case.doc in summary
    assert case.signature in summary
    assert summary.index(case.doc) < summary.index(case.signature)
    assert case.body not in summary
    assert case.body in source.decode()


@pytest.mark.parametrize("name", CASES)
def test_summary_of_a_short_function_is_all_of_it(name):
    case = CASES[name]
    source = case.source
    spec, tree, tags = parse(name, source)
    tag = definition(tags, case.short)
    assert tag.end_line - tag.start_line + 1 <= 12
    node = node_for(tree, tag)
    summary = summarize(node, source, spec)
    whole = source[tag.start_byte : tag.end_byte].decode()
    assert summary.endswith(whole)
    assert summary == summarize(node, source, spec, short_body=12)


@pytest.mark.parametrize("spec", LANGUAGES, ids=lambda spec: spec.name)
def test_scope_and_block_types_exist_in_the_grammar(spec):
    language = spec.language
    for kind in sorted(spec.scope_types | spec.block_types):
        assert language.id_for_node_kind(kind, True), f"{spec.name}: no {kind} node"


@pytest.mark.parametrize("spec", LANGUAGES, ids=lambda spec: spec.name)
def test_tags_query_compiles(spec):
    query = spec.tags_query
    captures = {query.capture_name(i) for i in range(query.capture_count)}
    assert {"name", "import", "reference.call", "reference.identifier"} <= captures
    assert any(c.startswith("definition.") for c in captures)
    categories = {c.partition(".")[2] for c in captures if c.startswith("definition.")}
    assert categories <= {
        "function", "method", "class", "interface", "type", "struct", "enum", "module",
        "constant", "field",
    }  # fmt: skip
    assert spec.grammar_version != "unknown"


@pytest.mark.parametrize("spec", LANGUAGES, ids=lambda spec: spec.name)
def test_language_for_path_maps_every_extension(spec):
    for extension in spec.extensions:
        assert language_for_path(f"src/some.file{extension}") is spec
        assert language_for_path(f"SRC/FILE{extension.upper()}") is spec


@pytest.mark.parametrize("path", ["notes.txt", "Makefile", "image.png", "archive.tar.gz", ".env"])
def test_unknown_extension_has_no_language(path):
    assert language_for_path(path) is None


@pytest.mark.parametrize(
    ("lsp_id", "name"),
    [
        ("python", "python"),
        ("javascript", "javascript"),
        ("javascriptreact", "javascript"),
        ("typescript", "typescript"),
        ("typescriptreact", "tsx"),
        ("csharp", "c_sharp"),
        ("c_sharp", "c_sharp"),
        ("shellscript", "bash"),
        ("sh", "bash"),
        ("c++", "cpp"),
        ("cpp", "cpp"),
        ("Go", "go"),
    ],
)
def test_language_named_maps_lsp_ids(lsp_id, name):
    spec = language_named(lsp_id)
    assert spec is not None
    assert spec.name == name


@pytest.mark.parametrize("lsp_id", [None, "", "plaintext", "markdown", "cobol"])
def test_unknown_language_id_has_no_language(lsp_id):
    assert language_named(lsp_id) is None


@pytest.mark.parametrize("name", CASES)
def test_broken_file_still_yields_tags(name):
    source = CASES[name].source
    lines = source.splitlines(keepends=True)
    middle = len(lines) // 2
    broken = b"".join([*lines[:middle], b'}} )( {{ @@@ <<< ::: "unterminated\n', *lines[middle:]])
    spec, tree, tags = parse(name, broken)
    assert tree.root_node.has_error
    assert tags.definitions
    # What comes before the damage is still found.
    first = min(parse(name, source)[2].definitions, key=lambda t: t.start_byte)
    assert first.name in {t.name for t in tags.definitions}
    for tag in tags.definitions:
        node = node_for(tree, tag)
        assert node is not None
        summarize(node, broken, spec)
    # A truncated file too.
    _, _, cut = parse(name, source[: len(source) // 3])
    assert isinstance(cut.definitions, tuple)


def test_summary_keeps_export_and_jsdoc_of_an_exported_arrow_function():
    source = b"""\
/**
 * Sums the numbers.
 */
export const sum = (values) => {
  let total = 0;
  for (const v of values) {
    total += v;
  }
  return total;
};
"""
    spec, tree, tags = parse("javascript", source)
    tag = definition(tags, "sum")
    assert tag.category == "function"
    summary = summarize(node_for(tree, tag), source, spec, short_body=3)
    assert summary == "/**\n * Sums the numbers.\n */\nexport const sum = (values) =>"


def test_summary_keeps_rust_attributes_and_cpp_templates():
    spec, tree, tags = parse("rust", CASES["rust"].source)
    summary = summarize(node_for(tree, definition(tags, "Entry")), CASES["rust"].source, spec)
    assert summary.startswith("/// A named value.\n#[derive(Debug, Clone)]\npub struct Entry {")
    spec, tree, tags = parse("cpp", CASES["cpp"].source)
    summary = summarize(node_for(tree, definition(tags, "total")), CASES["cpp"].source, spec)
    assert summary.startswith("template <typename T>\nT total(")


def test_summary_leaves_out_a_comment_that_ends_a_line_of_code():
    source = b"x = 1  # note\ndef foo():\n    return x\n"
    spec, tree, tags = parse("python", source)
    summary = summarize(node_for(tree, definition(tags, "foo")), source, spec)
    assert summary == "def foo():\n    return x"


def test_grouped_go_types_are_tagged_one_by_one():
    source = (
        b"package p\n\ntype (\n\tA struct{ x int }\n\tB = int\n\tC []string\n\tD interface{}\n)\n"
    )
    _, _, tags = parse("go", source)
    assert {(t.name, t.category) for t in tags.definitions} == {
        ("A", "struct"),
        ("B", "type"),
        ("C", "type"),
        ("D", "interface"),
    }


def test_cpp_functions_in_preprocessor_and_extern_blocks_and_no_constructors():
    source = b"""\
#ifdef USE_FAST
int fast(int a) { return a; }
#else
int slow(int a);
#endif
extern "C" { void c_api(void); }
class Widget {
public:
    Widget();
    explicit Widget(int size) {}
    ~Widget();
    void draw() const;
};
Widget::Widget() {}
"""
    _, _, tags = parse("cpp", source)
    assert {(t.name, t.category) for t in tags.definitions} == {
        ("fast", "function"),
        ("slow", "function"),
        ("c_api", "function"),
        ("Widget", "class"),
        ("draw", "method"),
        ("Widget", "method"),  # the out-of-class definition of the constructor
    }
