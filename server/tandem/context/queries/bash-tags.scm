; Definitions (file-level variables are constants, like module-level names in Python)
(function_definition name: (word) @name) @definition.function
(program (variable_assignment name: (variable_name) @name) @definition.constant)
(program
  (declaration_command (variable_assignment name: (variable_name) @name)) @definition.constant)

; References
(command
  name: (command_name (word) @name)
  (#not-match? @name "^(source|\\.)$")) @reference.call
(variable_name) @name @reference.identifier

; Imports
(command
  name: (command_name (word) @_source)
  (#match? @_source "^(source|\\.)$")) @import
