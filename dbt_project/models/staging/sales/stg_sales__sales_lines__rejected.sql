{{ rejected_rows('sales', 'sales_lines', 'stg_sales__sales_lines__validated') }}
