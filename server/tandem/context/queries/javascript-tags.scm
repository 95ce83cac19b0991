; Definitions
(class_declaration name: (identifier) @name) @definition.class
(class name: (identifier) @name) @definition.class
(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(method_definition
  name: [(property_identifier) (private_property_identifier)] @name) @definition.method

; `const f = () => …` is a function, tagged with its `const`; `obj.f = function …` too.
(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])) @definition.function
(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])) @definition.function
(assignment_expression
  left: (member_expression property: (property_identifier) @name)
  right: [(arrow_function) (function_expression)]) @definition.function
(pair
  key: (property_identifier) @name
  value: [(arrow_function) (function_expression)]) @definition.method

; File-level `const X = <a value>` (exported or not) is a constant.
(program
  (lexical_declaration
    (variable_declarator
      name: (identifier) @name
      value: [(string) (template_string) (number) (true) (false) (null) (regex) (array) (object)
          (binary_expression) (unary_expression) (member_expression) (new_expression)]))
    @definition.constant)
(program
  (export_statement
    (lexical_declaration
      (variable_declarator
        name: (identifier) @name
        value: [(string) (template_string) (number) (true) (false) (null) (regex) (array) (object)
            (binary_expression) (unary_expression) (member_expression) (new_expression)]))
      @definition.constant))

; References
(call_expression
  function: [(identifier) @name (member_expression property: (property_identifier) @name)]
  (#not-eq? @name "require")) @reference.call
(new_expression
  constructor: [(identifier) @name (member_expression property: (property_identifier) @name)])
  @reference.call
(jsx_opening_element name: (identifier) @name (#match? @name "^[A-Z]")) @reference.call
(jsx_self_closing_element name: (identifier) @name (#match? @name "^[A-Z]")) @reference.call
(class_heritage (identifier) @name) @reference.type
(identifier) @name @reference.identifier

; Imports: `import …` and `const x = require("…")`.
(import_statement) @import
(lexical_declaration
  (variable_declarator
    value: (call_expression function: (identifier) @_require)
    (#eq? @_require "require"))) @import
(variable_declaration
  (variable_declarator
    value: (call_expression function: (identifier) @_require)
    (#eq? @_require "require"))) @import
