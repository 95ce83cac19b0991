; Definitions
(class_definition name: (identifier) @name) @definition.class
(function_definition name: (identifier) @name) @definition.function
(module (expression_statement (assignment left: (identifier) @name) @definition.constant))
(decorated_definition definition: (function_definition name: (identifier) @name)) @definition.function
(decorated_definition definition: (class_definition name: (identifier) @name)) @definition.class

; References
(call function: [(identifier) @name (attribute attribute: (identifier) @name)]) @reference.call
(identifier) @name @reference.identifier

; Imports
(import_statement) @import
(import_from_statement) @import
