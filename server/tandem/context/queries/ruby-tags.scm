; Definitions
(class name: [(constant) @name (scope_resolution name: (_) @name)]) @definition.class
(singleton_class value: [(constant) @name (scope_resolution name: (_) @name)]) @definition.class
(module name: [(constant) @name (scope_resolution name: (_) @name)]) @definition.module
(assignment left: [(constant) @name (scope_resolution name: (constant) @name)]) @definition.constant

; A `def` at file level is a function; in a class, module or block body (or after `private`)
; it is a method.
(program (method name: (_) @name) @definition.function)
(body_statement (method name: (_) @name) @definition.method)
(argument_list (method name: (_) @name) @definition.method)
(singleton_method name: (_) @name) @definition.method
(alias name: (_) @name) @definition.method

; References
(call
  method: (identifier) @name
  (#not-match? @name "^(require|require_relative|load)$")) @reference.call
(superclass (constant) @name) @reference.type
(constant) @name @reference.type
(identifier) @name @reference.identifier

; Imports
(call
  !receiver
  method: (identifier) @_require
  (#any-of? @_require "require" "require_relative")) @import
