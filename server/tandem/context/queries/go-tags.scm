; Definitions
(function_declaration name: (identifier) @name) @definition.function
(method_declaration name: (field_identifier) @name) @definition.method
(method_elem name: (field_identifier) @name) @definition.method

; A lone type spec is tagged with its `type` keyword (so its doc comment comes along);
; one in a `type ( … )` group is tagged alone.
(type_declaration
  . (type_spec name: (type_identifier) @name type: (struct_type)) .) @definition.struct
(type_declaration
  . (type_spec name: (type_identifier) @name type: (interface_type)) .) @definition.interface
(type_declaration
  . (type_spec
      name: (type_identifier) @name
      type: [(type_identifier) (qualified_type) (generic_type) (pointer_type) (array_type)
             (slice_type) (map_type) (channel_type) (function_type) (parenthesized_type)
             (negated_type)]) .) @definition.type
(type_declaration . (type_alias name: (type_identifier) @name) .) @definition.type
(type_declaration
  "(" (type_spec name: (type_identifier) @name type: (struct_type)) @definition.struct)
(type_declaration
  "(" (type_spec name: (type_identifier) @name type: (interface_type)) @definition.interface)
(type_declaration
  "("
  (type_spec
    name: (type_identifier) @name
    type: [(type_identifier) (qualified_type) (generic_type) (pointer_type) (array_type)
           (slice_type) (map_type) (channel_type) (function_type) (parenthesized_type)
           (negated_type)]) @definition.type)
(type_declaration "(" (type_alias name: (type_identifier) @name) @definition.type)

; Package-level constants and variables.
(source_file (const_declaration (const_spec name: (identifier) @name) @definition.constant))
(source_file (var_declaration (var_spec name: (identifier) @name) @definition.constant))
(source_file
  (var_declaration (var_spec_list (var_spec name: (identifier) @name) @definition.constant)))

; References
(call_expression
  function: [
    (identifier) @name
    (selector_expression field: (field_identifier) @name)
    (parenthesized_expression (identifier) @name)
    (generic_type type: (type_identifier) @name)
  ]) @reference.call
(type_identifier) @name @reference.type
(identifier) @name @reference.identifier

; Imports
(import_declaration) @import
