; Definitions
(struct_item name: (type_identifier) @name) @definition.struct
(union_item name: (type_identifier) @name) @definition.struct
(enum_item name: (type_identifier) @name) @definition.enum
(trait_item name: (type_identifier) @name) @definition.interface
(type_item name: (type_identifier) @name) @definition.type
(mod_item name: (identifier) @name body: (declaration_list)) @definition.module
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.constant
(macro_definition name: (identifier) @name) @definition.function

; Functions in impl and trait blocks are methods; elsewhere (file, module, block) functions.
(impl_item body: (declaration_list (function_item name: (identifier) @name) @definition.method))
(trait_item body: (declaration_list (function_item name: (identifier) @name) @definition.method))
(trait_item
  body: (declaration_list (function_signature_item name: (identifier) @name) @definition.method))
(source_file (function_item name: (identifier) @name) @definition.function)
(mod_item body: (declaration_list (function_item name: (identifier) @name) @definition.function))
(block (function_item name: (identifier) @name) @definition.function)
(source_file (function_signature_item name: (identifier) @name) @definition.function)
(foreign_mod_item
  body: (declaration_list (function_signature_item name: (identifier) @name) @definition.function))

; References
(call_expression
  function: [
    (identifier) @name
    (field_expression field: (field_identifier) @name)
    (scoped_identifier name: (identifier) @name)
    (generic_function function: (identifier) @name)
    (generic_function function: (scoped_identifier name: (identifier) @name))
    (generic_function function: (field_expression field: (field_identifier) @name))
  ]) @reference.call
(macro_invocation macro: [(identifier) @name (scoped_identifier name: (identifier) @name)])
  @reference.call
(type_identifier) @name @reference.type
(identifier) @name @reference.identifier

; Imports
(use_declaration) @import
(mod_item !body) @import
(extern_crate_declaration) @import
